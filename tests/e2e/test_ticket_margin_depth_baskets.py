"""In Chromium: the ticket's margin before placing matches what the paper exchange then blocks; market
depth updates live under the ticket and on a watchlist row; a basket built, saved and placed from its
page, leg by leg. Screenshots at 1440 px (and 390 px for the phone layout) under test-artifacts/e2e/."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}


def _amount(text: str) -> Decimal:
    return Decimal(re.sub(r"[^\d.\-]", "", text))


def _watch(page, symbol: str):
    row = page.locator("#watchlist tr[data-instrument]", has_text=symbol)
    if not row.count():
        page.get_by_label("Search symbols to add").fill(symbol)
        page.get_by_role("button", name=re.compile(rf"^Add {symbol} \(NSE\)$")).click()
    expect(row).to_have_count(1)
    expect(row.locator("span.ltp")).to_have_text(re.compile(r"^[\d,]+\.\d{2}$"), timeout=5000)
    return row


def _ltp(row) -> Decimal:
    return _amount(row.locator("span.ltp").inner_text())


def _margin_blocked(page) -> Decimal:
    page.get_by_role("tab", name="Funds").click()
    funds = page.locator("#funds-panel")
    expect(funds).to_be_visible()
    value = funds.locator("dt:text-is('Margin blocked') + dd").inner_text()
    page.get_by_role("tab", name="Orders").click()
    return _amount(value)


def test_the_tickets_margin_matches_what_the_paper_exchange_blocks(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.set_viewport_size(WIDE)
    page.goto(terminal_server["url"] + "/")
    row = _watch(page, "ICICIBANK")
    before = _margin_blocked(page)

    row.get_by_role("button", name="Buy ICICIBANK").click()
    ticket = page.locator("dialog#ticket")
    expect(ticket).to_be_visible()
    limit = (_ltp(row) * Decimal("0.9")).quantize(Decimal("0.1"))
    ticket.get_by_label("Type").select_option("LIMIT")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("3")
    ticket.get_by_label("Price").fill(f"{limit}")
    expected = (3 * limit / 5).quantize(Decimal("0.01"))  # MIS: the value over the paper exchange's leverage of 5
    margin = ticket.locator("#preview-margin")
    expect(margin).to_have_attribute("data-value", f"{expected}")
    expect(ticket.locator("#preview-charges")).not_to_have_text("")
    page.screenshot_step("ticket-margin-1440")

    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Open")
    page.keyboard.press("Escape")
    page.reload()  # the funds panel loads once a page: read it afresh
    assert _margin_blocked(page) - before == expected


def test_market_depth_updates_live_under_the_ticket_and_on_a_watchlist_row(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.set_viewport_size(WIDE)
    page.goto(terminal_server["url"] + "/")
    row = _watch(page, "HDFCBANK")

    # A watchlist row expands into its depth: five levels a side, live.
    row.get_by_role("button", name="Market depth of HDFCBANK").click()
    row_depth = page.locator("#watchlist tr.depth-row .depth")
    expect(row_depth.locator("tr.depth-level")).to_have_count(5)
    first = row_depth.locator("tbody").inner_text()
    expect(row_depth.locator("tbody")).not_to_have_text(first, timeout=5000)
    page.screenshot_step("watchlist-depth-1440")

    # The ticket shows the same depth under its form, also live.
    row.get_by_role("button", name="Buy HDFCBANK").click()
    ticket = page.locator("dialog#ticket")
    expect(ticket).to_be_visible()
    depth = ticket.locator(".depth")
    expect(depth.locator("tr.depth-level")).to_have_count(5)
    first = depth.locator("tbody").inner_text()
    expect(depth.locator("tbody")).not_to_have_text(first, timeout=5000)
    page.screenshot_step("ticket-depth-1440")
    page.set_viewport_size(PHONE)
    page.screenshot_step("ticket-depth-390")


def test_a_basket_is_built_saved_and_placed_from_its_page(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.set_viewport_size(WIDE)
    page.goto(terminal_server["url"] + "/")
    # Instruments no other e2e test trades: the margin a leg adds depends on the account's orders and
    # positions in the same instrument, and the tests share one server.
    sbi, infy = _watch(page, "AXISBANK"), _watch(page, "KOTAKBANK")
    buy_at = (_ltp(sbi) * Decimal("0.95")).quantize(Decimal("1"))  # resting: a buy below the market
    sell_at = (_ltp(infy) * Decimal("1.05")).quantize(Decimal("1"))  # and a sell above it
    sbi_id, infy_id = sbi.get_attribute("data-instrument"), infy.get_attribute("data-instrument")
    page.get_by_role("link", name="Baskets").click()
    expect(page.get_by_role("heading", name="New basket")).to_be_visible()

    editor = page.locator("#basket-editor")
    editor.get_by_label("Name").fill("Pair trade")
    editor.get_by_label("Leg 1 instrument").select_option(sbi_id)
    editor.get_by_label("Leg 1 lots").fill("4")
    editor.get_by_label("Leg 1 price").fill(f"{buy_at}")
    editor.get_by_role("button", name="Add leg").click()
    editor.get_by_label("Leg 2 instrument").select_option(infy_id)
    editor.get_by_label("Leg 2 side").select_option("SELL")
    editor.get_by_label("Leg 2 lots").fill("2")
    editor.get_by_label("Leg 2 price").fill(f"{sell_at}")
    expected = ((4 * buy_at + 2 * sell_at) / 5).quantize(Decimal("0.01"))  # the sum: no benefit across instruments
    expect(editor.locator("#preview-margin")).to_have_attribute("data-value", f"{expected}")
    page.screenshot_step("basket-editor-1440")

    # A leg off the price tick is named with its field, and nothing is saved.
    editor.get_by_label("Leg 2 price").fill(f"{sell_at}.03")
    editor.get_by_role("button", name="Save basket").click()
    expect(page.locator('[data-leg="1"][data-code="price_off_tick"][data-field-error="price"]')).to_be_visible()
    expect(page.locator("tr.saved-basket")).to_have_count(0)
    page.screenshot_step("basket-invalid-leg-1440")
    page.locator("#basket-editor").get_by_label("Leg 2 price").fill(f"{sell_at}")
    page.locator("#basket-editor").get_by_role("button", name="Save basket").click()
    saved = page.locator("tr.saved-basket", has_text="Pair trade")
    expect(saved).to_have_count(1)

    saved.get_by_role("button", name="Place Pair trade").click()
    result = page.locator("#basket-result")
    expect(result).to_contain_text("2 of 2 legs placed")
    expect(result.locator("tr.leg-result.placed")).to_have_count(2)
    expect(result).to_contain_text("Open")
    page.screenshot_step("basket-placed-1440")
    page.set_viewport_size(PHONE)
    page.screenshot_step("basket-placed-390")
