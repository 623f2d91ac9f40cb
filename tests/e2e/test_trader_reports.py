"""The trader's P&L report in Chromium: a day of trades recorded for the demo account (an intraday
equity round trip and a futures round trip) shows the hand-computed realised P&L, every charge and the
net, on the page at 1440 and 390 px and in its CSV export; the holdings page lists a delivery buy placed
from the ticket.

Hand-computed on the default schedule (brokers/charges.py; Zerodha's published rates):
- INFY MIS buy 10 @ 1,000 (10,000): brokerage 3.00, exchange 0.30, SEBI 0.01, stamp 0.30, GST 0.60 = 4.21;
- INFY MIS sell 10 @ 1,010 (10,100): brokerage 3.03, STT 2.53, exchange 0.30, SEBI 0.01, GST 0.60 = 6.47;
- NIFTY future buy 75 @ 22,000 (16,50,000): brokerage 20, exchange 28.55, SEBI 1.65, stamp 33.00, GST 9.04 = 92.24;
- NIFTY future sell 75 @ 22,040 (16,53,000): brokerage 20, STT 330.60, exchange 28.5969 -> 28.60, SEBI 1.65,
  GST 18 % of 50.25 = 9.045 -> 9.05 = 389.90.
Realised 100 + 3,000 = 3,100; charges 4.21 + 6.47 + 92.24 + 389.90 = 492.82; net 2,607.18.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e

SEED = """
from brokers.models import BrokerAccount
from marketdata.models import Instrument
from tests.reports.recorded import record
account = BrokerAccount.objects.get(broker="paper", client_code="DEMO1")
infy = Instrument.objects.get(exchange="NSE", tradingsymbol="INFY")
future = Instrument.objects.filter(exchange="NFO", underlying="NIFTY", instrument_type="FUT").order_by("expiry").first()
if not account.trades.filter(executed_at__date__lte="2026-03-03").exists():
    record(account, infy, "BUY", 10, 1000, "2026-03-02 09:20")
    record(account, infy, "SELL", 10, 1010, "2026-03-02 10:05")
    record(account, future, "BUY", 75, 22000, "2026-03-02 11:00", product="NRML")
    record(account, future, "SELL", 75, 22040, "2026-03-02 14:30", product="NRML")
print(account.pk)
"""


def _seed(terminal_server) -> int:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED],
        cwd=ROOT,
        env=terminal_server["env"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_the_pnl_report_shows_the_hand_computed_realised_charges_and_net(terminal_server, page):
    account_id = _seed(terminal_server)
    trader, url = demo_users(terminal_server["demo_output"])["trader"], terminal_server["url"]
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, url, trader)
    page.goto(url + "/")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="P&L", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/reports/{account_id}/pnl/"))
    page.get_by_label("From").fill("2026-03-02")
    page.get_by_label("To").fill("2026-03-02")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#pnl-realised")).to_have_text("₹3,100.00")
    expect(page.locator("#pnl-charges")).to_have_text("₹492.82")
    expect(page.locator("#pnl-net")).to_have_text("₹2,607.18")
    expect(page.locator("#pnl-unrealised")).to_have_text("₹0.00")
    charges = page.locator(".charges-list").first
    for part, amount in (
        ("brokerage", "₹46.03"),
        ("stt", "₹333.13"),
        ("exchange", "₹57.75"),
        ("sebi", "₹3.32"),
        ("stamp", "₹33.30"),
        ("gst", "₹19.29"),
    ):
        expect(charges.locator(f'[data-part="{part}"] dd')).to_have_text(amount)
    expect(page.locator("#pnl-symbols tbody tr")).to_have_count(2)
    expect(page.locator("#pnl-day-2026-03-02")).to_contain_text("₹3,100.00")
    page.screenshot_step("pnl-1440")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
    assert rows[-1][0] == "TOTAL" and rows[-1][8] == "3100.00" and rows[-1][-2:] == ["492.82", "2607.18"]

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#pnl-net")).to_have_text("₹2,607.18")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # tables scroll inside their box
    page.screenshot_step("pnl-390")

    page.set_viewport_size({"width": 1440, "height": 900})
    page.get_by_role("link", name="Tax P&L").click()
    page.get_by_label("Financial year").fill("2025-26")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#tax-categories tr[data-category=intraday]")).to_contain_text("₹100.00")
    expect(page.locator("#tax-categories tr[data-category=fno]")).to_contain_text("₹3,000.00")
    page.screenshot_step("tax-1440")


def test_a_delivery_buy_from_the_ticket_shows_on_the_holdings_page(terminal_server, page):
    trader, url = demo_users(terminal_server["demo_output"])["trader"], terminal_server["url"]
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, url, trader)
    page.goto(url + "/")
    row = _add_to_watchlist(page, "HDFCBANK")
    row.get_by_role("button", name="Buy HDFCBANK").click()
    ticket = page.locator("dialog#ticket")
    ticket.get_by_label("Type").select_option("MARKET")
    ticket.get_by_label("Product").select_option("CNC")
    ticket.get_by_label("Lots").fill("3")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Filled")
    ticket.get_by_role("button", name="Close").click()
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Holdings").click()
    holding = page.locator(".holding-row", has_text="HDFCBANK")
    expect(holding).to_be_visible()
    expect(holding.locator(".qty")).to_have_text(re.compile(r"^\d+$"))
    expect(holding.locator(".ltp")).not_to_have_text("—")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.screenshot_step("holdings-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(".holding-row", has_text="HDFCBANK")).to_be_visible()
    page.screenshot_step("holdings-390")
