"""An order row that reached a page over its socket works like the rows the page rendered: its
forms carry the page's CSRF token, so they also work as plain POSTs (without htmx)."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist, _ltp

pytestmark = pytest.mark.e2e


def test_an_order_row_pushed_to_another_users_page_cancels_the_order_as_a_plain_post(terminal_server, browser, page):
    users, url = demo_users(terminal_server["demo_output"]), terminal_server["url"]
    sign_in(page, url, users["owner"])
    page.goto(url + "/")
    expect(page.locator("#orders-body")).to_be_attached()  # the owner's book is loaded, its socket opening

    # The trader places a resting limit order in a browser of their own.
    trader_context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-IN")
    try:
        trader = trader_context.new_page()
        sign_in(trader, url, users["trader"])
        trader.goto(url + "/")
        row = _add_to_watchlist(trader, "WIPRO")
        row.get_by_role("button", name="Buy WIPRO").click()
        ticket = trader.locator("dialog#ticket")
        ticket.get_by_label("Type").select_option("LIMIT")
        ticket.get_by_label("Lots").fill("1")
        ticket.get_by_label("Price").fill(f"{round(_ltp(row) * 0.9, 1):.2f}")
        ticket.get_by_role("button", name=re.compile("Place buy order")).click()
        expect(ticket.get_by_role("status")).to_contain_text("Open")
        order_id = ticket.locator(".placed").get_attribute("data-order")
    finally:
        trader_context.close()

    # The owner's page never asked for it: the row came over the socket, with the page's token in its forms.
    pushed = page.locator(f"#order-{order_id}")
    expect(pushed).to_contain_text("Open")
    expect(pushed.locator("form.inline input[name=csrfmiddlewaretoken]")).to_have_value(re.compile(r"^\w{32,}$"))
    page.screenshot_step("pushed-row")

    # form.submit() skips the submit event, so htmx stays out: the browser's own POST, then the redirect home.
    with page.expect_navigation() as navigation:
        page.evaluate("id => document.querySelector(`#order-${id} form.inline`).submit()", order_id)
    assert navigation.value.ok, navigation.value.status
    expect(page.locator(f"#order-{order_id}")).to_contain_text("Cancelled")
    page.screenshot_step("cancelled-by-plain-post")
