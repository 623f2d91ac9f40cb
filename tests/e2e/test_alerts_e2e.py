"""An alert firing on the simulated feed: set from a watchlist row's bell, it fires on the feed's next
ticks, and the dashboard shows a toast and the firing in its alerts panel (over the page's socket)."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist, _ltp

pytestmark = pytest.mark.e2e


def test_an_alert_set_from_a_watchlist_row_fires_on_the_simulated_feed(terminal_server, browser):
    trader, url = demo_users(terminal_server["demo_output"])["trader"], terminal_server["url"]
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-IN")
    try:
        page = context.new_page()
        sign_in(page, url, trader)
        page.goto(url + "/")
        row = _add_to_watchlist(page, "TATASTEEL")
        expect(page.locator("#alerts-panel h2")).to_have_text("Alerts")  # the panel loaded, the socket opening

        # The bell opens the alert form for the row's instrument, its price filled in.
        form_page = context.new_page()
        bell = row.get_by_role("link", name="Alert on TATASTEEL")
        form_page.goto(url + bell.get_attribute("href"))
        expect(form_page.get_by_role("heading", name=re.compile("New alert on NSE:TATASTEEL"))).to_be_visible()
        level = f"{_ltp(row) * 0.9:.2f}"  # already passed: the next tick fires it
        form_page.get_by_label("When").select_option("ltp_above")
        form_page.get_by_label("Level").fill(level)
        form_page.get_by_label("Note").fill("breakout watch")
        form_page.screenshot(path=str(_shot("form")), full_page=True)
        form_page.get_by_role("button", name="Set alert").click()
        expect(form_page.locator(".flash .success")).to_contain_text("is set")
        form_page.close()

        toast = page.locator("#alert-toasts .toast")
        expect(toast).to_contain_text("NSE:TATASTEEL", timeout=15000)
        expect(toast).to_contain_text("breakout watch")
        firing = page.locator("#firings-body tr").first
        expect(firing).to_contain_text("NSE:TATASTEEL LTP at or above")
        expect(page.locator("#alerts-body tr", has_text="TATASTEEL")).to_contain_text("Fired")
        page.screenshot(path=str(_shot("toast-1440")), full_page=False)
        page.screenshot(path=str(_shot("panel-1440")), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        expect(toast).to_be_visible()
        page.screenshot(path=str(_shot("toast-390")), full_page=False)
        toast.get_by_role("button", name="Dismiss").click()
        expect(toast).to_have_count(0)
    finally:
        context.close()


def _shot(name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"test_an_alert_set_from_a_watchlist_row_fires_on_the_simulated_feed-{name}.png"
