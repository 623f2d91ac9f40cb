"""An Owner's trade shows in the organisation's trade trail and its CSV export, and in the
order-to-trade ratio, reached from the organisation's pages."""

import re

import pytest
from playwright.sync_api import expect

from compliance.views import TRADE_TRAIL_HEADER
from tests.compliance.exporting import csv_statement
from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e


def test_an_owners_trade_is_in_the_trade_trail_its_export_and_the_order_to_trade_ratio(terminal_server, page):
    owner, url = demo_users(terminal_server["demo_output"])["owner"], terminal_server["url"]
    sign_in(page, url, owner)
    page.goto(url + "/")
    row = _add_to_watchlist(page, "TATASTEEL")
    row.get_by_role("button", name="Buy TATASTEEL").click()
    ticket = page.locator("dialog#ticket")
    ticket.get_by_label("Type").select_option("MARKET")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Filled")

    page.goto(url + "/account/")
    page.get_by_role("link", name="Risk limits").click()
    page.get_by_role("link", name="Compliance reports").click()
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Trade trail").click()
    trade = page.locator("table tbody tr", has_text="TATASTEEL")
    expect(trade.first).to_be_visible()
    expect(trade.first).to_contain_text("BUY")
    page.screenshot_step("trade-trail")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    data = download.value.path().read_bytes()
    assert csv_statement(data)["Report"] == "Trade trail"  # the statement comes first, then the data
    lines = [line for line in data.decode().splitlines() if not line.startswith("#")]
    assert lines[0].split(",") == list(TRADE_TRAIL_HEADER)
    ours = [line for line in lines[1:] if ",TATASTEEL," in line]  # other browser tests trade other symbols
    assert len(ours) == 1 and ",BUY," in ours[0]

    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Order-to-trade ratio").click()
    expect(page.locator("table tbody tr").first).to_be_visible()
    page.screenshot_step("order-to-trade")
