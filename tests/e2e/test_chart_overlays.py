"""Indicators drawn over the chart's imported history (overlays on the price pane, RSI and MACD in panes
of their own, kept across a reload), a limit price set by clicking the chart, and the resulting open
order drawn on the chart as a price line; at 1440 and 390 px."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_chart_history import SYMBOL, _import_sessions

pytestmark = pytest.mark.e2e
STUDIES = "ema:20,sma:50,vwap,bb:20:2,supertrend:10:3,rsi:14,macd:12:26:9"


def _drawn(page, key: str, line: str = "value") -> int:
    """How many bars of the study's line hold a value (not the warm-up's blanks)."""
    return page.evaluate(
        "([key, line]) => window.terminalChartStudies.series[key][line].data()"
        ".filter(p => p.value !== undefined).length",
        [key, line],
    )


def _until(check, seconds: float = 15) -> None:
    """Poll ``check`` (page.wait_for_function evaluates a string, which the CSP refuses)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.parametrize("width", [1440, 390])
def test_indicators_are_drawn_on_the_chart_and_a_click_sets_a_limit_order_drawn_as_a_line(terminal_server, page, width):
    if "history" not in terminal_server:  # the server is shared: import once
        terminal_server["history"] = _import_sessions(terminal_server)
    page.set_viewport_size({"width": width, "height": 900})
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.goto(terminal_server["url"] + "/")
    rows = page.locator("#watchlist tr[data-instrument]", has_text=SYMBOL)
    if rows.count() == 0:
        page.get_by_label("Search symbols to add").fill(SYMBOL)
        page.get_by_role("button", name=re.compile(rf"^Add {SYMBOL} \(NSE\)$")).click()
        expect(rows).to_have_count(1)
    rows.locator("th").click()
    panel = page.locator("#chart-panel")
    expect(panel).to_have_attribute("data-bars", re.compile(r"^11[23]\d\d$"), timeout=15_000)

    # Pick every indicator from the menu.
    page.get_by_text("Indicators", exact=True).click()
    menu = page.locator("#studies-form")
    for name in ("ema", "sma", "vwap", "bb", "supertrend", "rsi", "macd"):
        menu.locator(f"input[type=checkbox][name={name}]").check()
    expect(panel).to_have_attribute("data-studies", STUDIES)
    expect(panel).to_have_attribute("data-panes", "3")  # the price, RSI and MACD
    for key in STUDIES.split(","):
        expect(panel).to_have_attribute("data-studies-drawn", re.compile(re.escape(key)), timeout=15_000)
    bars = int(panel.get_attribute("data-bars"))
    # Values over the whole first page, but for the warm-up at the start of the stored history.
    _until(lambda: _drawn(page, "ema:20") > bars - 100)
    assert _drawn(page, "vwap") > bars - 10
    assert _drawn(page, "macd:12:26:9", "signal") > bars - 100
    assert _drawn(page, "bb:20:2", "upper") > bars - 100
    rsi = page.evaluate("window.terminalChartStudies.series['rsi:14'].value.data().filter(p => p.value !== undefined)")
    assert all(0 <= point["value"] <= 100 for point in rsi)
    expect(page.locator("#chart-studies-error")).to_be_empty()
    page.screenshot_step(f"chart-indicators-menu-{width}")
    page.locator("#chart-studies summary").click()  # close the menu to see the chart
    panel.scroll_into_view_if_needed()
    page.screenshot_step(f"chart-indicators-{width}")

    # The choice is kept for this user.
    page.reload()
    expect(panel).to_have_attribute("data-studies", STUDIES)
    rows.locator("th").click()
    expect(panel).to_have_attribute("data-studies-drawn", re.compile("rsi:14"), timeout=15_000)
    _until(lambda: _drawn(page, "ema:20") > bars - 100)

    # "Limit at click", then a click on the price pane under the last price: the ticket opens as
    # a LIMIT buy at the clicked price.
    page.get_by_role("button", name="Limit at click").click()
    page.locator("#chart").scroll_into_view_if_needed()
    box = page.locator("#chart").bounding_box()
    y = page.evaluate("(c => c.candles.priceToCoordinate(c.bars[c.bars.length - 1].close - 8))(window.terminalChart)")
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + y)
    ticket = page.locator("dialog#ticket")
    expect(ticket).to_be_visible()
    clicked = panel.get_attribute("data-clicked-price")
    assert re.fullmatch(r"\d+\.\d{2}", clicked) and round(float(clicked) / 0.05) * 0.05 == pytest.approx(float(clicked))
    expect(ticket.get_by_label("Price")).to_have_value(clicked)
    expect(ticket.get_by_label("Type")).to_have_value("LIMIT")
    expect(ticket.locator("input[name=side][value=BUY]")).to_be_checked()
    ticket.get_by_label("Product").select_option("MIS")
    page.screenshot_step(f"chart-click-limit-ticket-{width}")

    # Nothing was sent; placing it is the trader's act, and the working order is drawn on the chart.
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Open")
    ticket.get_by_role("button", name="Close").click()
    # (the shared server may hold orders of an earlier run: this one's line is looked for among them)
    script = "window.terminalChart.candles.priceLines().map(l => [l.options().price, l.options().title])"
    _until(lambda: [float(clicked), "BUY 1 LMT"] in page.evaluate(script))
    assert int(panel.get_attribute("data-marks")) >= 1
    panel.scroll_into_view_if_needed()
    page.screenshot_step(f"chart-order-line-{width}")
