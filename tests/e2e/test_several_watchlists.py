"""A second watchlist traded from the keyboard: create it, add two symbols, switch lists, move a row,
then arrow keys pick a row, B and S open the ticket on it and Enter charts it; screenshots at desk and
phone widths."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e


def _add(page, symbol: str):
    page.get_by_label("Search symbols to add").fill(symbol)
    page.get_by_role("button", name=re.compile(rf"^Add {symbol} \(NSE\)$")).click()
    row = page.locator("#watchlist tr[data-instrument]", has_text=symbol)
    expect(row).to_have_count(1)
    return row


def _symbols(page) -> list[str]:
    return page.locator("#watchlist tr[data-instrument] .sym").evaluate_all("els => els.map(e => e.title)")


def test_a_second_watchlist_with_keyboard_trading(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    sign_in(page, terminal_server["url"], trader)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(terminal_server["url"] + "/")
    first_name = page.locator("#watchlist-title").inner_text()
    name = f"Keys {uuid.uuid4().hex[:4]}"

    page.get_by_text("Manage lists").click()
    page.get_by_label("New list").fill(name)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#watchlist-title")).to_have_text(name)
    tab = page.get_by_role("navigation", name="Watchlists").get_by_role("link", name=name)
    expect(tab).to_have_attribute("aria-current", "page")
    _add(page, "SBIN")
    _add(page, "TCS")
    assert _symbols(page) == ["SBIN", "TCS"]

    # Switch to the first list and back: the dashboard then remembers the second.
    page.get_by_role("navigation", name="Watchlists").get_by_role("link", name=first_name).click()
    expect(page.locator("#watchlist-title")).to_have_text(first_name)
    page.get_by_role("navigation", name="Watchlists").get_by_role("link", name=name).click()
    page.goto(terminal_server["url"] + "/")
    expect(page.locator("#watchlist-title")).to_have_text(name)

    # Arrow keys select rows (a ring and aria-selected); Alt+Up moves the selected row up.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowDown")
    rows = page.locator("#watchlist tr[data-instrument]")
    expect(rows.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    expect(rows.nth(0)).to_have_attribute("aria-selected", "false")
    page.keyboard.press("Alt+ArrowUp")
    expect(rows.nth(0)).to_contain_text("TCS")
    expect(rows.nth(0)).to_have_attribute("aria-selected", "true")
    assert _symbols(page) == ["TCS", "SBIN"]
    page.keyboard.press("ArrowDown")
    expect(page.locator("#watchlist tr[aria-selected=true]")).to_contain_text("SBIN")
    page.screenshot_step("selected-row-1440")

    # B buys and S sells the selected row's instrument; Enter charts it.
    ticket = page.locator("dialog#ticket")
    page.keyboard.press("b")
    expect(ticket).to_be_visible()
    expect(ticket).to_contain_text("SBIN")
    expect(ticket.get_by_role("button", name=re.compile("Place buy order"))).to_be_visible()
    page.screenshot_step("buy-ticket-1440")
    page.keyboard.press("Escape")
    expect(ticket).not_to_be_visible()
    page.locator("#watchlist tr[aria-selected=true]").focus()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("s")
    expect(ticket).to_be_visible()
    expect(ticket).to_contain_text("TCS")
    expect(ticket.get_by_role("button", name=re.compile("Place sell order"))).to_be_visible()
    page.keyboard.press("Escape")
    page.locator("#watchlist tr[aria-selected=true]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chart-symbol")).to_have_text("TCS")

    # Typing in a field is not trading: B in the search box stays text.
    page.get_by_label("Search symbols to add").fill("")
    page.get_by_label("Search symbols to add").press("b")
    expect(ticket).not_to_be_visible()
    page.get_by_label("Search symbols to add").fill("")

    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_text("Manage lists").click()
    expect(page.get_by_label("New list")).to_be_visible()
    page.screenshot_step("lists-390")

    # Clean up: the list is deleted and the dashboard falls back to another list.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.get_by_role("button", name=f"Delete “{name}”").click()
    expect(page.locator("#watchlist-title")).not_to_have_text(name)
