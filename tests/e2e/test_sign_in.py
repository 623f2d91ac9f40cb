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
    sign_in(page, terminal_server["url"], trader)
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
