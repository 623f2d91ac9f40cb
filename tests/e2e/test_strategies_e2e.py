"""A trader builds a rule strategy in the page, deploys it on the demo paper account, starts it, sees it
trade on the simulated feed and stops it; the pages are checked at 1440 and 390 px wide.

Nothing outside the served terminal drives the strategy: its in-process beat dispatches each minute's
bar closes, its in-process worker evaluates the deployment (``strategies.tasks``), and the paper
exchange fills the order against the simulated feed's quotes. Standalone mode's strategy calendar is
"always" (settings.STRATEGIES_CALENDAR), so this runs on any day; the schedule set in the deploy form
covers the whole IST day.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e

WIDE, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
# Beat dispatches the bar that closed a few seconds after each minute turns: the first close after the
# start is at most a minute and a few seconds away, the page polls every few seconds, and the
# in-process worker may be busy with other tasks on this loaded machine.
FIRST_TRADE_MS = 150_000


def _both_widths(page, name: str) -> None:
    for label, size in (("1440", WIDE), ("390", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(300)
        # Nothing may stick out sideways on a phone: the page scrolls down, never across.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} at {label}px is {overflow}px wider than the screen"
        page.screenshot_step(f"{name}-{label}")
    page.set_viewport_size(WIDE)


def _all_day(page) -> None:
    """Fill the deploy form's schedule: the whole IST day (every day is a market day on the standalone
    calendar) and no square-off time, so the deployment runs whenever the test does."""
    page.get_by_label("Start (IST)").fill("00:00")
    page.get_by_label("No new entries after (IST)").fill("23:59")
    page.get_by_label("Square off at (IST)").fill("")


def test_a_trader_builds_deploys_runs_and_stops_a_rule_strategy(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    url = terminal_server["url"]
    page.set_viewport_size(WIDE)
    sign_in(page, url, trader)
    page.get_by_role("link", name="Strategies", exact=True).first.click()
    expect(page.get_by_role("heading", name=re.compile("strategies$"))).to_be_visible()
    page.get_by_role("link", name="New rule strategy").click()

    form = page.locator("#rule-form")
    form.get_by_label("Name", exact=True).fill("SBIN always in")
    form.get_by_label("Symbol").fill("SBIN")
    form.get_by_label("Timeframe (minutes)").select_option("1")
    # A refused rule first: a period of 0 is marked next to its field.
    form.locator("[name=indicator-0-period]").fill("0")
    form.get_by_role("button", name="Save strategy").click()
    expect(page.locator('[data-field-error="indicator-0-period"]')).to_be_visible()
    _both_widths(page, "rule-builder-error")
    form = page.locator("#rule-form")
    form.locator("[name=indicator-0-period]").fill("9")
    # Enter at once: when the close is above 1 (always, on the simulated feed); no exit condition.
    form.locator("[name=entry-0-left]").fill("close")
    form.locator("[name=entry-0-op]").select_option(">")
    form.locator("[name=entry-0-right]").fill("1")
    form.get_by_role("button", name="Remove exit condition 1").click()
    expect(page.locator("#rule-form [name=exit-0-left]")).to_have_count(0)
    page.locator("#rule-form").get_by_role("button", name="Save strategy").click()

    expect(page.get_by_role("heading", name=re.compile("^Deploy SBIN always in"))).to_be_visible()
    page.get_by_label("Name", exact=True).fill("SBIN on paper")
    page.locator(".deploy-accounts input[type=checkbox]").first.check()
    page.locator(".deploy-accounts input[type=number]").first.fill("2")
    _all_day(page)
    _both_widths(page, "deploy")
    page.get_by_role("button", name="Deploy").click()

    expect(page.locator("#webhook-secret")).to_be_visible()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#deployment-status")).to_have_text("Running")

    # The terminal's beat and worker evaluate the next bar close: the entry fires and the paper exchange
    # fills it. The page's live part, polled every few seconds, shows the order, the position and the log.
    order = page.locator("#deployment-orders tbody tr").first
    expect(order).to_contain_text("FILLED", timeout=FIRST_TRADE_MS)
    expect(order).to_contain_text("SBIN")
    expect(order.locator('[data-label="Side"]')).to_have_text("BUY")
    expect(order.locator('[data-label="Filled"]')).to_have_text("2")
    position = page.locator("#deployment-positions tbody tr").first
    expect(position).to_contain_text("SBIN")
    expect(position).to_contain_text("main")
    expect(position.locator('[data-label="Net qty"]')).to_have_text("2")
    expect(page.locator("#deployment-log")).to_contain_text("started")
    expect(page.locator("#equity-chart canvas").first).to_be_visible()
    _both_widths(page, "deployment-running")

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("#deployment-status")).to_have_text("Stopped")
    page.goto(url + "/strategies/")
    expect(page.locator("#deployments")).to_contain_text("Stopped")
    _both_widths(page, "strategies-list")


def _post_json(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_tradingview_alert_on_a_webhook_deployment_trades_and_a_wrong_secret_does_not(terminal_server, page):
    trader = demo_users(terminal_server["demo_output"])["trader"]
    url = terminal_server["url"]
    page.set_viewport_size(WIDE)
    sign_in(page, url, trader)
    page.goto(url + "/strategies/")
    page.get_by_label("Name", exact=True).fill("TV alerts")
    page.get_by_role("button", name="Create and deploy").click()
    page.get_by_label("Name", exact=True).fill("TV alerts on paper")
    page.locator(".deploy-accounts input[type=checkbox]").first.check()
    _all_day(page)
    page.get_by_role("button", name="Deploy").click()
    secret = page.locator("#webhook-secret").inner_text()
    hook = page.locator(".webhook-url").inner_text()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#deployment-status")).to_have_text("Running")

    alert = {"action": "buy", "ticker": "NSE:INFY", "contracts": "3", "signal_id": "e2e-infy-1"}
    status, body = _post_json(hook, alert, {"X-Webhook-Secret": "wrong"})
    assert (status, body["code"]) == (403, "webhook_secret_invalid")
    status, body = _post_json(hook, alert | {"passphrase": secret}, {})
    assert status == 200 and [(o["side"], o["quantity"], o["status"]) for o in body["orders"]] == [("BUY", 3, "placed")]
    again = _post_json(hook, alert | {"passphrase": secret}, {})
    assert again == (status, body)  # a redelivery answers as the first and places nothing

    expect(page.locator("#deployment-orders")).to_contain_text("INFY", timeout=15_000)
    expect(page.locator("#deployment-log")).to_contain_text("Signal e2e-infy-1")
    _both_widths(page, "webhook-deployment")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("#deployment-status")).to_have_text("Stopped")


def test_an_owner_adds_and_deactivates_an_algo_id(terminal_server, page):
    owner = demo_users(terminal_server["demo_output"])["owner"]
    url = terminal_server["url"]
    page.set_viewport_size(WIDE)
    sign_in(page, url, owner)
    page.goto(url + "/strategies/")
    page.get_by_role("link", name="Algo ids").click()
    page.get_by_role("textbox", name="Algo id").fill("bad code!")
    page.get_by_role("button", name="Add algo id").click()
    expect(page.locator('[data-field-error="code"]')).to_be_visible()
    page.get_by_role("textbox", name="Algo id").fill("NSE-E2E-1")
    page.get_by_label("Description").fill("approved for the e2e run")
    page.get_by_role("button", name="Add algo id").click()
    expect(page.locator("#algo-ids")).to_contain_text("NSE-E2E-1")
    _both_widths(page, "algo-ids")
    page.get_by_role("button", name="Deactivate NSE-E2E-1").click()
    expect(page.locator("#algo-ids")).to_contain_text("Inactive")
