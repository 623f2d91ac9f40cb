"""The chart's history: 35 sessions of imported 1-minute bars, the chart opens on the latest 30
sessions and loads the earlier ones when the user scrolls to the left edge, at 1440 and 390 px."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from marketdata.gaps import market_days
from tests.e2e.conftest import ROOT, demo_users, sign_in
from tests.marketdata.bars import csv_text, session_minutes

pytestmark = pytest.mark.e2e
SYMBOL = "HDFCBANK"  # quoted near 1,000 by the simulator, as the generated bars are
SESSIONS, FIRST_PAGE = 35, 30 * 375


def _import_sessions(terminal_server) -> list[datetime]:
    """Import the last SESSIONS weekdays' session minutes (before today) with manage.py import_candles --csv."""
    today = datetime.now(UTC).date()
    days = market_days(today - timedelta(days=70), today - timedelta(days=1))[-SESSIONS:]
    minutes = session_minutes(days[0], days[-1])
    path = terminal_server["var_dir"] / f"{SYMBOL}-history.csv"
    path.write_text(csv_text(minutes))
    subprocess.run(
        [sys.executable, "manage.py", "import_candles", "--csv", str(path), "--symbol", f"NSE:{SYMBOL}"],
        cwd=ROOT,
        env=terminal_server["env"],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return minutes


def _oldest(panel) -> datetime:
    return datetime.fromisoformat(panel.get_attribute("data-oldest").replace("Z", "+00:00"))


@pytest.mark.parametrize("width", [1440, 390])
def test_the_chart_opens_on_thirty_sessions_and_scrolls_back_to_the_start_of_the_import(terminal_server, page, width):
    if "history" not in terminal_server:  # the server is shared: import once
        terminal_server["history"] = _import_sessions(terminal_server)
    minutes = terminal_server["history"]
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
    expect(page.locator("#chart-symbol")).to_have_text(SYMBOL)

    # The first page: the latest 30 sessions (11,250 bars, more than 30 calendar days), plus live bars.
    expect(panel).to_have_attribute("data-bars", re.compile(r"^11[23]\d\d$"), timeout=15_000)
    expect(panel).to_have_attribute("data-history-start", "false")
    bars = int(panel.get_attribute("data-bars"))
    assert FIRST_PAGE <= bars < FIRST_PAGE + 100
    # (bars the live feed stored today count in the page, so the oldest may be a few minutes later)
    assert minutes[-FIRST_PAGE] <= _oldest(panel) <= minutes[-FIRST_PAGE + 100]
    assert datetime.now(UTC) - _oldest(panel) > timedelta(days=30)
    panel.scroll_into_view_if_needed()
    page.screenshot_step(f"chart-history-{width}")

    # Scroll towards the left edge (most of the way programmatically, the last stretch by dragging):
    # the earlier sessions load, and the history ends at the import's first minute.
    page.evaluate("window.terminalChart.chart.timeScale().setVisibleLogicalRange({from: 60, to: 200})")
    box = page.locator("#chart").bounding_box()
    y = box["y"] + box["height"] / 2
    for _ in range(3):
        page.mouse.move(box["x"] + box["width"] * 0.2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.8, y, steps=8)
        page.mouse.up()
        if panel.get_attribute("data-history-start") == "true":
            break
    expect(panel).to_have_attribute("data-history-start", "true", timeout=10_000)
    assert _oldest(panel) == minutes[0]
    assert int(panel.get_attribute("data-bars")) >= len(minutes)
    expect(page.locator("#chart-status")).not_to_contain_text("Could not")
    page.screenshot_step(f"chart-history-scrolled-{width}")
