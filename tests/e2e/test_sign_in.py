import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, next_totp, sign_in

pytestmark = pytest.mark.e2e


def test_a_trader_signs_in_with_a_one_time_code_and_reaches_the_terminal(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    page.goto(terminal_server["url"] + "/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.screenshot_step("login")
    sign_in(page, terminal_server["url"], trader, fresh=True)
    page.goto(terminal_server["url"] + "/")
    expect(page.get_by_role("heading", name="Watchlist 1")).to_be_visible()
    page.screenshot_step("dashboard")


def test_a_password_alone_does_not_open_the_terminal(terminal_server, page):
    viewer = demo_users(terminal_server["demo_output"])["viewer"]
    page.goto(terminal_server["url"] + "/login/")
    page.get_by_label("Username").fill(viewer.username)
    page.get_by_label("Password").fill(viewer.password)
    page.get_by_role("button", name="Sign in").click()
    page.goto(terminal_server["url"] + "/")
    expect(page.get_by_label("One-time code or backup code")).to_be_visible()
    page.get_by_label("One-time code or backup code").fill("000000" if next_totp(viewer) != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.screenshot_step("wrong-code")


def test_a_wrong_password_is_refused_with_a_message(terminal_server, page):
    page.goto(terminal_server["url"] + "/login/")
    page.get_by_label("Username").fill("demo-trader")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()


def _sign_out_and_in_with(page, user, code: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("One-time code or backup code").fill(code)
    page.get_by_role("button", name="Verify").click()


def test_a_user_makes_backup_codes_and_signs_in_once_with_one_of_them(terminal_server, page):
    url, admin = terminal_server["url"], demo_users(terminal_server["demo_output"])["admin"]
    sign_in(page, url, admin)
    page.goto(url + "/account/")
    page.get_by_role("button", name="Make new backup codes").click()
    expect(page.locator("#backup-codes code")).to_have_count(10)
    codes = page.locator("#backup-codes code").all_inner_texts()
    page.screenshot_step("backup-codes")
    grouped = " ".join(codes[0][i : i + 4] for i in range(0, len(codes[0]), 4))  # as people copy them
    _sign_out_and_in_with(page, admin, grouped)
    expect(page.get_by_label("One-time code or backup code")).to_have_count(0)
    page.goto(url + "/")
    expect(page.get_by_role("heading", name="Watchlist 1")).to_be_visible()
    _sign_out_and_in_with(page, admin, grouped)
    expect(page.get_by_role("alert")).to_be_visible()  # used up
    page.screenshot_step("backup-code-used")
