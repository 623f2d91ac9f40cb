"""A page whose session signs out in another tab says so and stops reconnecting its sockets, instead
of retrying for ever at the shortest delay."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e


def test_a_page_signed_out_elsewhere_says_so_and_opens_no_more_sockets(terminal_server, page):
    viewer = demo_users(terminal_server["demo_output"])["viewer"]
    sign_in(page, terminal_server["url"], viewer)
    page.goto(terminal_server["url"] + "/")
    expect(page.locator("#live-status")).to_have_text("Live")
    opened = []
    page.on("websocket", lambda socket: opened.append(socket.url))

    # Sign out from elsewhere in the same browser (the same session cookie), as another tab would.
    token = page.locator("form[action='/logout/'] input[name=csrfmiddlewaretoken]").get_attribute("value")
    signed_out = page.request.post(
        terminal_server["url"] + "/logout/", form={"csrfmiddlewaretoken": token}, max_redirects=0
    )
    assert signed_out.status == 302, signed_out.status

    expect(page.locator("#live-status")).to_have_text(re.compile("Signed out"), timeout=10_000)
    settled = len(opened)
    time.sleep(4)  # past the shortest reconnect delay several times over
    assert len(opened) == settled, opened
    page.screenshot_step("signed-out-elsewhere")
