"""The positions book's header shows the day's realised, unrealised and total P&L, and an order that
never filled leaves no row behind."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_kill_switch_confirmation import _order, _shots
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e


def _rupees(text: str) -> Decimal:
    """-₹1,23,456.50 -> Decimal("-123456.50")"""
    return Decimal(re.sub(r"[₹,\s]", "", text))


def test_the_positions_header_shows_realised_unrealised_and_total_and_no_unfilled_row(terminal_server, page):
    trader, url = demo_users(terminal_server["demo_output"])["trader"], terminal_server["url"]
    sign_in(page, url, trader)
    page.goto(url + "/")

    # A limit order far below the market rests, then is cancelled: it never fills.
    unfilled = _add_to_watchlist(page, "NTPC")
    ltp = float(unfilled.locator("span.ltp").inner_text().replace(",", ""))
    _order(page, unfilled, "NTPC", order_type="LIMIT", price=f"{round(ltp * 0.9 / 0.05) * 0.05:.2f}")
    page.locator("#orders-body tr", has_text="NTPC").first.get_by_role(
        "button", name=re.compile("Cancel order")
    ).click()
    expect(page.locator("#orders-body tr", has_text="NTPC").first).to_contain_text("Cancelled")

    # A market buy fills: an open position with MTM.
    filled = _add_to_watchlist(page, "ONGC")
    _order(page, filled, "ONGC", order_type="MARKET")

    page.get_by_role("tab", name="Positions").click()
    expect(page.locator("#positions-body tr", has_text="ONGC")).to_have_count(1)
    expect(page.locator("#positions-body tr", has_text="NTPC")).to_have_count(0)
    header = page.get_by_label("P&L today")
    for label in ("Realised today", "Unrealised (MTM)", "Total today"):
        expect(header).to_contain_text(label)
    page.wait_for_timeout(2500)  # one re-render: the three figures come from one response
    realised, unrealised, total = (
        _rupees(page.locator(f"#pnl-{name}").inner_text()) for name in ("realised", "unrealised", "total")
    )
    assert realised + unrealised == total
    _shots(page, "positions")
