"""Before an Owner engages a kill switch the terminal says what it will do, with the counts the server
reads for the chosen scope; once on, the banner names the scope in words and who may release it."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e

ACCOUNT = "Account Paper (demo) (DEMO1)"  # load_demo's paper account


def _order(page, row, symbol: str, *, order_type: str, price: str = "") -> None:
    row.get_by_role("button", name=f"Buy {symbol}").click()
    ticket = page.locator("dialog#ticket")
    ticket.get_by_label("Type").select_option(order_type)
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    if price:
        ticket.get_by_label("Price").fill(price)
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Filled" if order_type == "MARKET" else "Open")
    ticket.get_by_role("button", name="Close").click()


def _shots(page, name: str) -> None:
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot_step(f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_kill_switch_says_what_it_will_cancel_and_square_off_and_who_may_release_it(terminal_server, page):
    owner, url = demo_users(terminal_server["demo_output"])["owner"], terminal_server["url"]
    sign_in(page, url, owner)
    page.goto(url + "/")
    row = _add_to_watchlist(page, "POWERGRID")
    _order(page, row, "POWERGRID", order_type="MARKET")
    ltp = float(row.locator("span.ltp").inner_text().replace(",", ""))
    _order(page, row, "POWERGRID", order_type="LIMIT", price=f"{round(ltp * 0.9 / 0.05) * 0.05:.2f}")

    page.locator("#kill-switch").get_by_role("button", name="Kill switch…").click()
    account_form = page.locator("form.kill-switch-form[data-scope=account]")
    wording = re.compile(
        rf"Stop trading on {re.escape(ACCOUNT)}: refuse its new orders, cancel its (\d+) open orders? and square"
        r" off its (\d+) open positions? at market\.\s+Only an Owner or Admin of Demo Capital can release it\."
    )
    expect(account_form).to_contain_text(wording)
    cancels, squares = (int(n) for n in wording.search(re.sub(r"\s+", " ", account_form.inner_text())).groups())
    assert cancels >= 1 and squares >= 1
    expect(page.locator("form.kill-switch-form[data-scope=user]")).to_contain_text(
        re.compile(r"Stop your own trading: refuse your new orders on every account and cancel your \d+ open orders?")
    )
    expect(page.locator("form.kill-switch-form[data-scope=organisation]")).to_contain_text(
        "Stop trading on Organisation Demo Capital"
    )
    expect(page.locator("#kill-switch")).not_to_contain_text("account:")
    _shots(page, "confirmation")

    account_form.get_by_role("checkbox").check()
    account_form.get_by_role("button", name=f"Kill switch for {ACCOUNT}").click()
    panel = page.locator("#kill-switch")
    expect(panel.get_by_role("status")).to_have_text(
        f"Cancelled {cancels} open order{'s' if cancels != 1 else ''} and squared off {squares}"
        f" position{'s' if squares != 1 else ''} at market."
    )
    banner = panel.get_by_role("alert")
    expect(banner).to_contain_text(f"Kill switch ON for {ACCOUNT}: new orders are refused")
    expect(banner).to_contain_text("Only an Owner or Admin of Demo Capital can release it.")
    expect(banner).not_to_contain_text("account:")
    _shots(page, "engaged")

    panel.get_by_role("button", name="Release").click()
    expect(panel).not_to_contain_text("Kill switch ON")
