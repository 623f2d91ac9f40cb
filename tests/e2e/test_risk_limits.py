"""An Owner sets a member's maximum order quantity on the organisation's limits page; the Trader's
next order above it is refused in the ticket, one at the limit goes through."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e


def _trader_form(page, trader):
    return page.locator("form.limits-form", has=page.get_by_role("heading", name=re.compile(trader.username)))


def _set_max_quantity(page, base_url: str, trader, value: str) -> None:
    page.goto(base_url + "/account/")
    page.get_by_role("link", name="Risk limits").click()
    form = _trader_form(page, trader)
    form.get_by_label("Max order quantity").fill(value)
    form.get_by_role("button", name=re.compile("Save the limits of")).click()
    expect(_trader_form(page, trader).get_by_role("status")).to_have_text("Saved.")


def test_an_owners_quantity_limit_refuses_the_traders_larger_order(terminal_server, page):
    users = demo_users(terminal_server["demo_output"])
    owner, trader, url = users["owner"], users["trader"], terminal_server["url"]
    sign_in(page, url, owner)
    _set_max_quantity(page, url, trader, "1")
    expect(_trader_form(page, trader).get_by_label("Max order quantity")).to_have_value("1")
    page.screenshot_step("limit-saved")
    try:
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, url, trader)
        page.goto(url + "/")
        row = _add_to_watchlist(page, "HDFCBANK")
        row.get_by_role("button", name="Buy HDFCBANK").click()
        ticket = page.locator("dialog#ticket")
        ticket.get_by_label("Type").select_option("MARKET")
        ticket.get_by_label("Product").select_option("MIS")
        ticket.get_by_label("Lots").fill("2")
        ticket.get_by_role("button", name=re.compile("Place buy order")).click()
        expect(ticket.get_by_role("alert")).to_contain_text("above the limit of 1")
        page.screenshot_step("order-refused")
        ticket.get_by_label("Lots").fill("1")
        ticket.get_by_role("button", name=re.compile("Place buy order")).click()
        expect(ticket.get_by_role("status")).to_contain_text("Filled")
    finally:  # the other browser tests share this terminal: take the limit off again
        page.goto(url + "/")
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, url, owner)
        _set_max_quantity(page, url, trader, "")
