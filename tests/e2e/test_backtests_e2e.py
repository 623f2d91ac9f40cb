"""A trader runs a backtest from a strategy's page over stored candles and reads its report, then sweeps
two parameters, sees the runs ranked and compares the best with the worst; the pages are checked at 1440
and 390 px wide.

The served terminal's own worker runs the backtest (``strategies.tasks.run_backtest``) and the page polls
its progress until the report replaces it. The candles are the hand-worked INFY day of
tests/strategies/fixtures/infy_2026-03-02.csv, stored into the terminal's database for the sample
master's NSE:INFY, with an EMA-crossover definition of the demo organisation trading it.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, demo_users, sign_in

pytestmark = pytest.mark.e2e

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
REPORT_MS = 90_000
SEED = """
from datetime import date
from marketdata.models import Candle, Instrument
from marketdata.services import candle_partitions_ensure
from accounts.models import Organisation, User
from strategies.models import StrategyDefinition
from strategies.services import strategy_create
from tests.strategies.harness import load_bars
from tests.strategies.backtest_world import EMA_PARAMS

infy = Instrument.objects.get(exchange="NSE", tradingsymbol="INFY")
candle_partitions_ensure(months=[date(2026, 3, 1)])
Candle.objects.filter(instrument=infy, ts__date__gte=date(2026, 3, 1), ts__date__lte=date(2026, 3, 3)).delete()
Candle.objects.bulk_create(
    Candle(instrument=infy, ts=b.ts, open=b.open, high=b.high, low=b.low, close=b.close, volume=b.volume)
    for b in load_bars("infy_2026-03-02.csv", {"INFY": infy.pk})
)
org = Organisation.objects.get(slug="demo")
if not StrategyDefinition.objects.filter(organisation=org, name="EMA 3/8 INFY").exists():
    trader = User.objects.get(username="{trader}")
    strategy_create(actor=trader, organisation=org, name="EMA 3/8 INFY", kind="ema_crossover", params=EMA_PARAMS)
"""


def _both_widths(page, name: str) -> None:
    for label, size in (("1440", WIDE), ("390", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(400)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} at {label}px is {overflow}px wider than the screen"
        page.screenshot_step(f"{name}-{label}")
    page.set_viewport_size(WIDE)


def _seed(terminal_server, username: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED.replace("{trader}", username)],
        cwd=ROOT,
        env=terminal_server["env"],
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_a_trader_backtests_a_strategy_over_stored_candles_and_reads_its_report(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    _seed(terminal_server, trader.username)
    url = terminal_server["url"]
    page.set_viewport_size(WIDE)
    sign_in(page, url, trader)
    page.goto(url + "/orgs/demo/strategies/")
    page.get_by_role("link", name="Backtest EMA 3/8 INFY").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Backtest EMA 3.8 INFY"))).to_be_visible()
    form = page.locator("#backtest-form")
    expect(form.get_by_label("Instrument")).to_have_value("NSE:INFY")  # from the strategy's parameters

    # A range without stored candles is refused beside its field first.
    form.get_by_label("From (IST)").fill("2026-02-02")
    form.get_by_label("To (IST)").fill("2026-02-03")
    form.get_by_role("button", name="Run backtest").click()
    expect(page.locator('[data-field-error="start"]')).to_contain_text("No stored 1-minute candles")
    _both_widths(page, "backtest-form-error")

    form = page.locator("#backtest-form")
    form.get_by_label("From (IST)").fill("2026-03-02")
    form.get_by_label("To (IST)").fill("2026-03-02")
    form.get_by_label("Slippage (basis points)").fill("2")
    form.get_by_role("button", name="Run backtest").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Backtest \d+"))).to_be_visible()

    # The worker runs it; the polled progress turns into the report.
    expect(page.locator("#backtest-metrics")).to_be_visible(timeout=REPORT_MS)
    expect(page.locator("#backtest-status")).to_have_text("Done")
    expect(page.locator('#backtest-metrics [data-metric="trades"]')).not_to_have_text("0")
    expect(page.locator("#backtest-chart canvas").first).to_be_visible()
    expect(page.locator("#monthly-returns")).to_contain_text("2026")
    assert page.locator("#backtest-trades tbody tr").count() >= 1
    with page.expect_download() as download:
        page.get_by_role("link", name="Trades as CSV").click()
    assert download.value.suggested_filename.endswith("-trades.csv")
    _both_widths(page, "backtest-report")


def test_a_trader_sweeps_two_parameters_and_sees_the_runs_ranked(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    _seed(terminal_server, trader.username)
    url = terminal_server["url"]
    page.set_viewport_size(WIDE)
    sign_in(page, url, trader)
    page.goto(url + "/orgs/demo/strategies/")
    page.get_by_role("link", name="Backtest EMA 3/8 INFY").click()
    page.get_by_role("link", name="Sweep its parameters instead").click()
    form = page.locator("#sweep-form")
    form.get_by_label("Grid").fill('{"fast": [3, 5], "slow": [8, 13]}')
    form.get_by_label("Rank by").select_option("net_pnl")
    form.get_by_label("From (IST)").fill("2026-03-02")
    form.get_by_label("To (IST)").fill("2026-03-02")
    form.get_by_role("button", name="Start sweep").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Sweep \d+"))).to_be_visible()
    expect(page.locator("#sweep-progress")).to_have_text("4 of 4 runs finished", timeout=REPORT_MS * 2)
    ranks = page.locator('#sweep-ranking td[data-label="Rank"]').all_inner_texts()
    assert ranks == ["1", "2", "3", "4"]
    _both_widths(page, "sweep-ranked")

    # The best and the worst side by side.
    runs = page.locator('#sweep-ranking td[data-label="Run"] a').all_inner_texts()
    best, worst = runs[0].lstrip("#"), runs[-1].lstrip("#")
    page.goto(f"{url}/orgs/demo/backtests/compare/?a={best}&b={worst}")
    expect(page.get_by_role("heading", name=f"Backtest {best} and {worst}")).to_be_visible()
    expect(page.locator('#backtest-compare [data-metric="net_pnl"]')).to_have_count(2)
    expect(page.locator("#compare-chart canvas").first).to_be_visible()
    _both_widths(page, "backtest-compare")
