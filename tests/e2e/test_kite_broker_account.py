"""A Kite account from its creation to a lapsed session, in Chromium against the local Kite server:
an Owner adds the account on the organisation's broker accounts page, connects it through Kite's
login redirect, places an order from the ticket, sees it fill once Kite's postback arrives, and after
Kite refuses the session's token sees the session lapsed and signs in again with Re-login."""

from __future__ import annotations

import re
import urllib.request
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, demo_users, free_port, served_terminal, sign_in
from tests.e2e.test_trading import _add_to_watchlist, _ltp
from tests.kite import fake_kite as fk

pytestmark = pytest.mark.e2e
LABEL = "Zerodha e2e"
WIDTHS = (1440, 390)


@pytest.fixture(scope="module")
def kite_terminal(tmp_path_factory: pytest.TempPathFactory):
    """The local Kite server and a terminal whose Kite API and login page are that server's; Kite's
    login page sends the user back to this terminal's callback."""
    port = free_port()
    fake = fk.FakeKite(redirect_url=f"http://127.0.0.1:{port}/brokers/kite/callback/").start()
    env = {"KITE_API_ROOT": fake.url, "KITE_LOGIN_URL": f"{fake.url}/connect/login"}
    try:
        # The day's instruments dump from the local Kite server: the Kite mapping orders are sent by.
        load = ["load_kite_instruments", f"{fake.url}/instruments", "--min-rows", "1", "--no-progress"]
        with served_terminal(tmp_path_factory.mktemp("e2e-kite-var"), port=port, env=env, commands=(load,)) as served:
            yield served | {"fake": fake}
    finally:
        fake.stop()


# The outermost elements that make the page wider than the window (what scrolls inside a panel, as
# the order book on a phone, does not; an absolutely positioned element can escape its panel).
WIDER_THAN_WINDOW = """() => {
  const past = el => el.getBoundingClientRect().right > window.innerWidth + 1;
  const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return true; } return false; };
  if (document.documentElement.scrollWidth <= window.innerWidth) return [];
  const found = [...document.querySelectorAll('body *')]
    .filter(el => past(el) && !(el.parentElement && past(el.parentElement)) && !scrolls(el))
    .map(el => `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${el.getBoundingClientRect().right}px`);
  return found.length ? found : [`the page is ${document.documentElement.scrollWidth}px wide`];
}"""


def _shots(page, name: str) -> None:
    """Full-page screenshots of the page loaded at each width (test-artifacts/e2e/kite-*.png), with no
    element wider than the window."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (*WIDTHS, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()  # as a phone or a desk loads it: the chart sizes itself once, at load
        page.wait_for_load_state("networkidle")
        if width in WIDTHS:
            wide = page.evaluate(WIDER_THAN_WINDOW)
            assert not wide, f"{name} at {width}px: {wide}"
            page.screenshot(path=str(ARTIFACTS / f"kite-{name}-{width}.png"), full_page=True)


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_an_owner_adds_a_kite_account_connects_trades_and_signs_in_again_after_the_session_lapses(kite_terminal, page):
    url, fake = kite_terminal["url"], kite_terminal["fake"]
    owner = demo_users(kite_terminal["demo_output"])["owner"]
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, url, owner)

    # Add the account on the organisation's page; the credentials are never shown again.
    page.goto(url + "/orgs/demo/broker-accounts/")
    form = page.locator("form#add-broker-account")
    form.get_by_label("Broker").select_option("kite")
    form.get_by_label("Label").fill(LABEL)
    form.get_by_label("Client code").fill("AB1234")
    # Choosing Zerodha shows the Kite Connect credentials only (other families' fieldsets are hidden).
    credentials = form.locator("fieldset.credentials:visible")
    expect(credentials).to_have_count(1)
    expect(credentials.locator("legend")).to_contain_text("Kite Connect credentials")
    credentials.get_by_label("API key").fill(fk.API_KEY)
    credentials.get_by_label("API secret").fill(fk.API_SECRET)
    form.get_by_role("button", name="Add account").click()
    expect(page.locator("main p.success")).to_contain_text(f"{LABEL} was added")
    row = page.locator("#broker-accounts tbody tr", has_text=LABEL)
    expect(row).to_contain_text("kite")
    expect(row).to_contain_text("Live")
    expect(row).to_contain_text("Not signed in (never signed in)")
    assert fk.API_SECRET not in page.content() and fk.API_KEY not in page.content()
    _shots(page, "accounts-added")

    # Connect: Kite's login page sends the browser back to the terminal with a request token.
    row.get_by_role("button", name=f"Connect {LABEL}").click()
    badge = page.locator("#broker-session")
    expect(badge).to_have_class(re.compile(r"\blive\b"))
    expect(badge).to_contain_text("Signed in to the broker until")
    expect(page.locator("#trading .panel-head h2")).to_contain_text(LABEL)
    order_account = page.locator("#trading").get_attribute("data-account")
    expect(page.locator(".flash")).to_contain_text(
        re.compile(rf"{LABEL} is signed in to its broker until .* 06:00 IST")
    )
    assert fake.count("POST", "/session/token") == 1
    _shots(page, "trading-live")

    # An order from the ticket rests at Kite, fills there, and Kite's postback reaches the terminal.
    instrument = _add_to_watchlist(page, "INFY")
    instrument.get_by_role("button", name="Buy INFY").click()
    ticket = page.locator("dialog#ticket")
    price = Decimal(round(_ltp(instrument) * 0.99 * 20)) / 20
    ticket.get_by_label("Type").select_option("LIMIT")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_label("Price").fill(f"{price:.2f}")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Open")
    order_id = ticket.locator(".placed").get_attribute("data-order")
    page.keyboard.press("Escape")
    (kite_order,) = fake.orders
    assert fake.orders[kite_order]["tag"] and fake.orders[kite_order]["price"] == price
    order_row = page.locator(f"#order-{order_id}")
    expect(order_row).to_contain_text("Open")

    fake.fill(kite_order, price)
    assert _post(url + "/brokers/kite/postback/", fake.postback(kite_order)) == 200
    # The postback carries no trades: the queued reconciliation fetches them (after a 5 s countdown).
    expect(order_row).to_contain_text("Filled", timeout=45_000)
    expect(order_row).to_contain_text("1/1")
    page.screenshot_step("order-filled")

    # Kite refuses the token (revoked at Kite): the next order is refused unsent and the session ends.
    # The ticket's margin preview asks Kite first, so the refusal may end the session before the
    # order is placed: then placing says the account is not signed in, rather than "Rejected".
    fake.access_token_valid = False
    instrument.get_by_role("button", name="Buy INFY").click()
    ticket.get_by_label("Type").select_option("LIMIT")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_label("Price").fill(f"{price:.2f}")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket).to_contain_text(re.compile(r"Rejected|is not signed in to its broker"))
    page.keyboard.press("Escape")
    assert len(fake.orders) == 1
    page.reload()
    expect(badge).to_have_class(re.compile(r"\blapsed\b"))
    expect(badge).to_contain_text("Not signed in to the broker (Kite: ")
    expect(badge.get_by_role("button", name="Re-login")).to_be_visible()
    _shots(page, "trading-lapsed")
    page.goto(url + "/orgs/demo/broker-accounts/")
    expect(row).to_contain_text("Not signed in (Kite: ")
    _shots(page, "accounts-lapsed")

    expect(row.get_by_role("button", name=f"Re-login {LABEL}")).to_be_visible()

    # Re-login in the trading panel's badge signs the account in again; the book shows the filled order.
    page.goto(f"{url}/?account={order_account}")
    badge.get_by_role("button", name="Re-login").click()
    expect(badge).to_have_class(re.compile(r"\blive\b"))
    expect(page.locator(f"#order-{order_id}")).to_contain_text("Filled")
    assert fake.count("POST", "/session/token") == 2
    page.goto(url + "/orgs/demo/broker-accounts/")
    expect(row).to_contain_text("Signed in until")
    _shots(page, "accounts-live")
    # The one refused order (409, no session at the broker) is the only failed request the browser saw.
    refused = [e for e in errors if "status of 409" in e]
    assert len(refused) <= 1 and not [e for e in errors if e not in refused], errors
