import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def _demo_credentials(output: str) -> tuple[str, str]:
    username = re.search(r"username:\s*(\S+)", output).group(1)
    password = re.search(r"password:\s*(\S+)", output).group(1)
    return username, password


def test_a_trader_signs_in_and_reaches_the_terminal(terminal_server, page):
    username, password = _demo_credentials(terminal_server["demo_output"])
    page.goto(terminal_server["url"] + "/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.screenshot_step("login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Watchlist 1")).to_be_visible()
    page.screenshot_step("home")


def test_a_wrong_password_is_refused_with_a_message(terminal_server, page):
    page.goto(terminal_server["url"] + "/login/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
