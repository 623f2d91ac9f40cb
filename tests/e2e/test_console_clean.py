"""No page of the terminal logs an error to the browser console: every page each demo role can open,
and a trade from the ticket to the positions book, with Chromium collecting console messages, page
errors and failed requests (a 404 favicon, a script the Content-Security-Policy blocks, an htmx
trigger filter that needs eval)."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e

ORG = "demo"  # load_demo's organisation
MANAGER_PAGES = [
    f"/orgs/{ORG}/members/",
    f"/orgs/{ORG}/limits/",
    f"/orgs/{ORG}/compliance/trades/",
    f"/orgs/{ORG}/compliance/order-to-trade/",
]


def _collect_errors(page) -> list[str]:
    """Start collecting what Chromium reports as an error on ``page``; return the (growing) list."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"console {m.type}: {m.text} ({m.location.get('url')})") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


def _visit(page, url: str, errors: list[str], *, settle_ms: int = 2500) -> None:
    """Open ``url`` and stay long enough for the page's polls and sockets to run a few times."""
    response = page.goto(url)
    assert response is not None and response.ok, f"{url} answered {response and response.status}"
    page.wait_for_timeout(settle_ms)
    assert not errors, f"{url} logged: {errors}"


@pytest.mark.parametrize("role", ["owner", "admin", "trader", "viewer"])
def test_no_page_logs_a_console_error_for_any_demo_role(terminal_server, page, role):
    user, url = demo_users(terminal_server["demo_output"])[role], terminal_server["url"]
    errors = _collect_errors(page)
    _visit(page, url + "/login/", errors, settle_ms=500)
    sign_in(page, url, user)
    assert not errors, errors

    _visit(page, url + "/", errors)
    row = _add_to_watchlist(page, "WIPRO")
    account_id = page.locator("#trading").get_attribute("data-account")
    instrument_id = row.get_attribute("data-instrument")
    for tab in ("Trades", "Positions", "Funds", "Orders"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(2500 if tab == "Positions" else 300)  # the positions book re-renders itself
    assert not errors, f"the dashboard's books logged: {errors}"
    page.screenshot_step("dashboard")

    _visit(page, url + "/options/", errors)
    page.screenshot_step("option-chain")
    for path in ("/reports/", f"/reports/{account_id}/tradebook/", f"/reports/{account_id}/tax/", "/holdings/"):
        _visit(page, url + path, errors, settle_ms=300)
    _visit(page, url + "/account/", errors, settle_ms=300)
    if role != "viewer":
        _visit(page, f"{url}/trading/{account_id}/ticket/?instrument={instrument_id}&side=BUY", errors, settle_ms=300)
        _visit(page, f"{url}/trading/{account_id}/baskets/", errors, settle_ms=500)
    if role in ("owner", "admin"):
        for path in MANAGER_PAGES:
            _visit(page, url + path, errors, settle_ms=300)
        page.screenshot_step("manager-page")
    assert not errors, errors


def test_a_trade_from_ticket_to_positions_logs_no_console_error(terminal_server, page):
    trader, url = demo_users(terminal_server["demo_output"])["trader"], terminal_server["url"]
    errors = _collect_errors(page)
    sign_in(page, url, trader)
    page.goto(url + "/")
    row = _add_to_watchlist(page, "COALINDIA")
    row.focus()
    page.keyboard.press("b")
    ticket = page.locator("dialog#ticket")
    ticket.get_by_label("Type").select_option("MARKET")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Filled")
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Positions").click()
    expect(page.locator("#positions-body tr", has_text="COALINDIA")).to_have_count(1)
    page.wait_for_timeout(5000)  # two or three re-renders of the positions book
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot_step(f"positions-{width}")
    assert not errors, errors


def _positions_polls(page) -> list[str]:
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/panels/positions/" in r.url else None)
    return polls


def _set_tab_hidden(page, hidden: bool) -> None:
    """Make the page see its browser tab as hidden or shown (a headless tab is always visible)."""
    page.evaluate(
        """hidden => {
            Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
            const state = hidden ? "hidden" : "visible";
            Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_the_positions_book_re_renders_only_while_the_browser_tab_and_the_book_are_showing(terminal_server, page):
    trader, url = demo_users(terminal_server["demo_output"])["trader"], terminal_server["url"]
    errors = _collect_errors(page)
    sign_in(page, url, trader)
    page.goto(url + "/")
    polls = _positions_polls(page)
    page.get_by_role("tab", name="Positions").click()
    expect(page.locator("#positions-panel table")).to_be_visible()
    page.wait_for_timeout(4500)
    assert len(polls) >= 3, polls  # the first load, then one every 2 s

    _set_tab_hidden(page, True)
    page.wait_for_timeout(300)  # a request already on its way may land
    hidden_from = len(polls)
    page.wait_for_timeout(4500)
    assert len(polls) == hidden_from, "the book re-rendered in a hidden browser tab"

    _set_tab_hidden(page, False)
    page.wait_for_timeout(500)
    assert len(polls) > hidden_from, "the book did not catch up when the tab was shown again"

    page.get_by_role("tab", name="Orders").click()
    page.wait_for_timeout(300)
    other_tab_from = len(polls)
    page.wait_for_timeout(4500)
    assert len(polls) == other_tab_from, "the positions book re-rendered behind the Orders tab"
    assert not errors, errors
