"""New credentials for a broker account, in Chromium: an account whose stored credentials no longer
open (their key retired or unknown) is flagged on the organisation's broker accounts page, and its
Owner enters new ones on the account's credentials page, which clears the flag."""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, ROOT, demo_users, sign_in
from tests.e2e.test_kite_broker_account import WIDER_THAN_WINDOW

pytestmark = pytest.mark.e2e
LABEL = "Zerodha credentials e2e"
WIDTHS = (1440, 390)
# Stored credentials sealed under a key this terminal does not have, as after a key was removed.
UNREADABLE = """
from accounts.models import Organisation
from brokers.models import BrokerAccount
org = Organisation.objects.get(slug="demo")
BrokerAccount.objects.create(organisation=org, label="{label}", broker="kite", client_code="CR0001",
    credentials_ciphertext="v1:gone:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
"""


def _shots(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        page.wait_for_load_state("networkidle")
        assert not page.evaluate(WIDER_THAN_WINDOW), f"{name} at {width}px"
        page.screenshot(path=str(ARTIFACTS / f"credentials-{name}-{width}.png"), full_page=True)


def test_an_owner_re_enters_credentials_that_no_longer_open(terminal_server, page):
    url = terminal_server["url"]
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", UNREADABLE.replace("{label}", LABEL)],
        cwd=ROOT,
        env=terminal_server["env"],
        check=True,
        capture_output=True,
    )
    sign_in(page, url, demo_users(terminal_server["demo_output"])["owner"])
    page.goto(url + "/orgs/demo/broker-accounts/")
    row = page.locator("#broker-accounts tbody tr", has_text=LABEL)
    expect(row).to_contain_text("Credentials cannot be read: enter them again")
    _shots(page, "flagged")

    row.get_by_role("link", name=f"New credentials for {LABEL}").click()
    expect(page.locator("h1")).to_contain_text(f"New credentials for {LABEL}")
    _shots(page, "form")
    page.get_by_label("API key").fill("new-key")
    page.get_by_label("API secret").fill("new-secret-0042")
    page.get_by_role("button", name="Replace credentials").click()
    expect(page.locator("main p.success")).to_contain_text(f"{LABEL}'s credentials were replaced")
    row = page.locator("#broker-accounts tbody tr", has_text=LABEL)
    expect(row).not_to_contain_text("Credentials cannot be read")
    assert "new-secret-0042" not in page.content()
