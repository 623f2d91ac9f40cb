import csv
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, _standalone_env, demo_users, sign_in

pytestmark = pytest.mark.e2e
REPLAY = [sys.executable, "manage.py", "run_feed", "--source", "replay"]
PRICE = r"(\d{1,2}(,\d\d)*,\d{3}|\d{1,3})\.\d{2}"  # Indian grouping, the tick's two places: 1,512.35


def _csp_violations(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return violations


def _backfill(terminal_server, symbol: str, last_price: float, minutes: int) -> None:
    """Store ``minutes`` 1-minute candles of a random walk ending at ``last_price`` five minutes ago, by
    replaying them with their own timestamps into the terminal's database (as an operator backfills)."""
    rng = random.Random(7)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    closes = [last_price]
    for _ in range(minutes - 1):
        closes.append(closes[-1] * (1 + rng.gauss(0, 0.0008)))
    closes.reverse()
    path = terminal_server["var_dir"] / f"{symbol}-candles.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["ts", "instrument", "open", "high", "low", "close", "volume"])
        previous = closes[0]
        for index, close in enumerate(closes):
            ts = end - timedelta(minutes=minutes - 1 - index)
            high = max(previous, close) * (1 + abs(rng.gauss(0, 0.0004)))
            low = min(previous, close) * (1 - abs(rng.gauss(0, 0.0004)))
            row = [f"{previous:.2f}", f"{high:.2f}", f"{low:.2f}", f"{close:.2f}"]
            writer.writerow([ts.isoformat(), f"NSE:{symbol}", *row, rng.randint(50, 900)])
            previous = close
    subprocess.run(
        [*REPLAY, str(path), "--speed", "0", "--keep-timestamps", "--metrics-port", "0"],
        cwd=ROOT,
        env=_standalone_env(terminal_server["var_dir"]),
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_the_chart_draws_candles_of_the_selected_row_and_switches_timeframe(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    violations = _csp_violations(page)
    sign_in(page, terminal_server["url"], trader)
    page.goto(terminal_server["url"] + "/")
    for symbol in ("RELIANCE", "INFY"):
        page.get_by_label("Search symbols to add").fill(symbol)
        page.get_by_role("button", name=re.compile(rf"^Add {symbol} \(NSE\)$")).click()
        expect(page.locator("#watchlist tr[data-instrument]", has_text=symbol)).to_have_count(1)
    panel = page.locator("#chart-panel")
    expect(panel.locator("canvas").first).to_be_visible()
    infy_ltp = page.locator("#watchlist tr[data-instrument]", has_text="INFY").locator("span.ltp")
    expect(infy_ltp).to_have_text(re.compile(rf"^{PRICE}$"), timeout=3000)
    _backfill(terminal_server, "INFY", float(infy_ltp.inner_text().replace(",", "")), minutes=1200)

    # Enter on the focused row charts that instrument; live ticks draw its last candle.
    infy = page.locator("#watchlist tr[data-instrument]", has_text="INFY")
    infy.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chart-symbol")).to_have_text("INFY")
    expect(panel).to_have_attribute("data-instrument", infy.get_attribute("data-instrument"))
    # The history: about the 1,200 minutes just backfilled, or more (other tests may have stored older bars).
    expect(panel).to_have_attribute("data-bars", re.compile(r"^(1[1-9]\d\d|[2-9]\d{3}|\d{5})$"), timeout=5000)
    expect(page.locator("#chart-ohlc")).to_have_text(re.compile(rf"^O {PRICE} +H {PRICE} +L {PRICE} +C {PRICE}$"))
    expect(infy).to_have_class(re.compile(r"\bcharted\b"))
    first = page.locator("#chart-ohlc").inner_text()
    expect(page.locator("#chart-ohlc")).not_to_have_text(first, timeout=10_000)  # the last candle moves
    page.screenshot_step("chart-1m")

    page.get_by_role("button", name="15m").click()
    expect(page.get_by_role("button", name="15m")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="1m")).to_have_attribute("aria-pressed", "false")
    expect(panel).to_have_attribute("data-timeframe", "15m")
    expect(panel).to_have_attribute("data-bars", re.compile(r"^[1-9]\d*$"), timeout=5000)
    expect(page.locator("#chart-status")).not_to_contain_text("Could not")

    # A click on another row charts it; the 1D key shortcut switches to daily bars.
    page.locator("#watchlist tr[data-instrument]", has_text="RELIANCE").locator("th").click()
    expect(page.locator("#chart-symbol")).to_have_text("RELIANCE")
    page.keyboard.press("5")
    expect(panel).to_have_attribute("data-timeframe", "1d")
    expect(panel).to_have_attribute("data-bars", re.compile(r"^[1-9]\d*$"), timeout=5000)
    page.screenshot_step("chart-daily")
    assert not violations, violations


def test_the_option_chain_shows_strikes_around_the_money_with_live_prices(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    violations = _csp_violations(page)
    sign_in(page, terminal_server["url"], trader)
    page.goto(terminal_server["url"] + "/")
    page.get_by_role("link", name="Option chain").click()
    expect(page).to_have_url(re.compile(r"/options/$"))
    chain = page.locator("#option-chain")
    expect(chain.locator("tbody tr")).to_have_count(21)  # 10 strikes each side of the money
    expect(chain.locator("tbody tr.atm")).to_have_count(1)
    expect(page.locator("#live-status")).to_have_text("Live")

    atm = chain.locator("tbody tr.atm")
    call_ltp = atm.locator("td.quote.call span.ltp")
    expect(call_ltp).to_have_text(re.compile(rf"^{PRICE}$"), timeout=3000)
    expect(atm.locator("td.iv").first).to_have_text(re.compile(r"^\d+\.\d\d$"), timeout=8000)
    expect(atm.locator("td.oi").first).to_have_text(re.compile(r"^(\d{1,2}(,\d\d)*,\d{3}|\d{1,3})$"))  # 3,97,605
    first = call_ltp.inner_text()
    expect(call_ltp).not_to_have_text(first, timeout=10_000)  # an at-the-money option trades every second or so
    page.screenshot_step("option-chain-nifty")

    # The controls apply on change: another underlying and fewer strikes.
    page.get_by_label("Underlying").select_option("BANKNIFTY")
    expect(page).to_have_url(re.compile(r"underlying=BANKNIFTY"))
    page.get_by_label("Strikes each side").select_option("5")
    expect(chain.locator("tbody tr")).to_have_count(11)
    expect(chain.locator("h2")).to_contain_text("BANKNIFTY")
    page.screenshot_step("option-chain-banknifty")

    # Keyboard: arrows move between strikes.
    chain.locator("tbody tr.atm").focus()
    page.keyboard.press("ArrowDown")
    expect(chain.locator("tbody tr:focus")).not_to_have_class(re.compile(r"\batm\b"))

    response = page.goto(terminal_server["url"] + "/options/?underlying=NOSUCH")
    assert response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("No options on 'NOSUCH'")
    page.screenshot_step("option-chain-unknown")
    assert not violations, violations
