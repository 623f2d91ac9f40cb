"""The trader's day in the browser: ticket, order book, modify, cancel, market fill, position MTM,
kill switch; and a Viewer who sees the books but no ticket."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e


def _add_to_watchlist(page, symbol: str):
    page.get_by_label("Search symbols to add").fill(symbol)
    page.get_by_role("button", name=re.compile(rf"^Add {symbol} \(NSE\)$")).click()
    row = page.locator("#watchlist tr[data-instrument]", has_text=symbol)
    expect(row).to_have_count(1)
    expect(row.locator("span.ltp")).to_have_text(re.compile(r"^[\d,]+\.\d{2}$"), timeout=5000)
    return row


def _ltp(row) -> float:
    return float(row.locator("span.ltp").inner_text().replace(",", ""))  # grouped: 1,512.35


def test_a_trader_places_modifies_and_cancels_a_limit_order_then_fills_a_market_order(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.goto(terminal_server["url"] + "/")
    row = _add_to_watchlist(page, "SBIN")

    # B on the focused row opens the ticket; a limit far below the market rests in the book.
    row.focus()
    page.keyboard.press("b")
    ticket = page.locator("dialog#ticket")
    expect(ticket).to_be_visible()
    page.screenshot_step("ticket")
    limit = round(_ltp(row) * 0.9, 1)
    ticket.get_by_label("Type").select_option("LIMIT")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("2")
    ticket.get_by_label("Price").fill(f"{limit:.2f}")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Open")
    page.keyboard.press("Escape")
    expect(ticket).not_to_be_visible()

    order_row = page.locator("#orders-body tr", has_text="SBIN").first
    expect(order_row).to_contain_text("Open")
    expect(order_row).to_contain_text(f"{limit:.2f}")
    page.screenshot_step("order-open")

    # Modify the price inline, then cancel.
    order_row.get_by_text("Modify").click()
    new_limit = round(limit * 0.99, 1)
    order_row.get_by_label("Price").fill(f"{new_limit:.2f}")
    order_row.get_by_role("button", name="Save").click()
    order_row = page.locator("#orders-body tr", has_text="SBIN").first
    expect(order_row).to_contain_text(f"{new_limit:.2f}")
    order_row.get_by_role("button", name=re.compile("Cancel order")).click()
    expect(page.locator("#orders-body tr", has_text="SBIN").first).to_contain_text("Cancelled")
    page.screenshot_step("order-cancelled")

    # A market order fills against the simulated book and opens a position with live MTM.
    row.get_by_role("button", name="Buy SBIN").click()
    expect(ticket).to_be_visible()
    ticket.get_by_label("Type").select_option("MARKET")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Filled")
    ticket.get_by_role("button", name="Close").click()
    page.get_by_role("tab", name="Positions").click()
    position = page.locator("#positions-body tr", has_text="SBIN")
    expect(position).to_have_count(1)
    mtm = position.locator("td.mtm")
    first = mtm.inner_text()
    expect(mtm).not_to_have_text(first, timeout=10_000)  # the MTM follows the market
    page.screenshot_step("position-mtm")


def test_the_kill_switch_refuses_new_orders_until_released(terminal_server, page):
    owner = demo_users(terminal_server["demo_output"])["owner"]
    sign_in(page, terminal_server["url"], owner)
    page.goto(terminal_server["url"] + "/")
    row = _add_to_watchlist(page, "ITC")
    page.get_by_role("button", name="Kill switch…").click()
    page.get_by_label(re.compile("Stop trading on Account")).check()
    page.get_by_role("button", name=re.compile("^Kill switch for Account")).click()
    banner = page.locator("#kill-switch")
    expect(banner).to_contain_text("Kill switch ON")
    page.screenshot_step("kill-switch-on")

    row.get_by_role("button", name="Buy ITC").click()
    ticket = page.locator("dialog#ticket")
    ticket.get_by_label("Type").select_option("MARKET")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("alert")).to_contain_text(re.compile("kill switch", re.I))
    page.screenshot_step("order-refused")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Release").click()
    expect(banner).not_to_contain_text("Kill switch ON")


def test_a_viewer_sees_the_books_but_no_order_ticket(terminal_server, page):
    viewer = demo_users(terminal_server["demo_output"])["viewer"]
    sign_in(page, terminal_server["url"], viewer)
    page.goto(terminal_server["url"] + "/")
    row = _add_to_watchlist(page, "INFY")
    expect(page.get_by_role("tab", name="Orders")).to_be_visible()
    expect(row.get_by_role("button", name="Buy INFY")).to_have_count(0)
    expect(page.locator("dialog#ticket")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Kill switch"))).to_have_count(0)
    row.focus()
    page.keyboard.press("b")
    expect(page.locator("dialog#ticket")).to_have_count(0)
    page.screenshot_step("viewer")
