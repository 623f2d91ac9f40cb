import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e


def test_a_symbol_added_to_the_watchlist_shows_a_live_price_that_changes(terminal_server, page):
    owner = demo_users(terminal_server["demo_output"])["owner"]
    sign_in(page, terminal_server["url"], owner)
    page.goto(terminal_server["url"] + "/")
    # An index: it ticks several times a second and moves many ticks in 3 s, as on the exchange.
    page.get_by_label("Search symbols to add").fill("NIFTY BANK")
    page.get_by_role("button", name=re.compile(r"^Add NIFTY BANK \(NSE\)$")).click()
    row = page.locator("#watchlist tr[data-instrument]", has_text="NIFTY BANK")
    expect(row).to_have_count(1)
    ltp = row.locator("span.ltp")
    expect(ltp).to_have_text(re.compile(r"^[\d,]+\.\d{2}$"), timeout=3000)  # grouped: 48,250.05
    expect(page.locator("#live-status")).to_have_text("Live")
    first = ltp.inner_text()
    started = time.monotonic()
    expect(ltp).not_to_have_text(first, timeout=3000)
    assert time.monotonic() - started < 3
    page.screenshot_step("watchlist-live")


def test_a_removed_symbol_leaves_the_watchlist(terminal_server, page):
    admin = demo_users(terminal_server["demo_output"])["admin"]
    sign_in(page, terminal_server["url"], admin)
    page.goto(terminal_server["url"] + "/")
    page.get_by_label("Search symbols to add").fill("TCS")
    page.get_by_role("button", name=re.compile(r"^Add TCS \(NSE\)$")).click()
    expect(page.locator("#watchlist tr[data-instrument]", has_text="TCS")).to_have_count(1)
    # The panel was swapped, the search box was kept (hx-preserve): its text, and its listeners.
    expect(page.get_by_label("Search symbols to add")).to_have_value("TCS")
    page.get_by_label("Search symbols to add").fill("INFY")
    expect(page.get_by_role("button", name=re.compile(r"^Add INFY \(NSE\)$"))).to_be_visible()
    page.get_by_role("button", name="Remove TCS").click()
    expect(page.locator("#watchlist tr[data-instrument]", has_text="TCS")).to_have_count(0)
