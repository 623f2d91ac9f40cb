"""A compliance officer signs in, lands on the organisation's reports (not the trading dashboard),
browses the audit log with a filter, starts a verification of the chain, and reads the algo order
summary; the pages are photographed at 1440 and 390 px wide, where the reports' tabs keep their names."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import demo_users, sign_in

pytestmark = pytest.mark.e2e


def test_a_compliance_officer_browses_the_audit_log_and_a_report(terminal_server, page):
    users, url = demo_users(terminal_server["demo_output"]), terminal_server["url"]
    sign_in(page, url, users["compliance"])
    expect(page).to_have_url(url + "/orgs/demo/compliance/")
    expect(page.get_by_role("heading", name="Demo Capital: compliance reports")).to_be_visible()
    expect(page.locator("#nav-reports")).to_be_visible()

    page.locator("#report-list").get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit-log tbody tr").first).to_be_visible()
    page.get_by_label("Action").fill("auth.")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/orgs/demo/compliance/audit/\?.*action=auth\."))
    actions = page.locator("#audit-log tbody td.action")
    expect(actions.first).to_contain_text("auth.")
    assert all(text.startswith("auth.") for text in actions.all_inner_texts())
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("main p[role=status]").first).to_contain_text("verif")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot_step("audit-log-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot_step("audit-log-390")

    page.set_viewport_size({"width": 1440, "height": 900})
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Algo orders").click()
    expect(page.locator("#ops-how")).to_contain_text("10 orders per second")
    expect(page.locator("#algo-summary")).to_be_visible()
    page.screenshot_step("algo-summary-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot_step("algo-summary-390")
    # On a phone the reports' tabs wrap; none is cut to an ellipsis or pushed out of the page.
    cut = page.locator("nav.report-nav a").evaluate_all(
        "links => links.filter(a => a.scrollWidth > a.clientWidth + 1"
        " || a.getBoundingClientRect().right > document.documentElement.clientWidth)"
        ".map(a => a.textContent.trim())"
    )
    assert cut == []

    # The trading dashboard is not theirs: the home page sends them back to the reports.
    page.goto(url + "/")
    expect(page).to_have_url(url + "/orgs/demo/compliance/")
