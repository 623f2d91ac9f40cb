"""An Owner exports a range too long to send at once: the export becomes a job whose page follows its
progress and then offers the file, which downloads with the SHA-256 the page states."""

import hashlib
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from compliance.selectors import IST
from compliance.views import TRADE_TRAIL_HEADER
from tests.e2e.conftest import demo_users, sign_in
from tests.e2e.test_trading import _add_to_watchlist

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXTRA = 100_000  # enough rows that the worker takes a while, and the page shows it


def _more_fills(server: dict, count: int, *, day) -> None:
    """``count`` more fills of the last CIPLA trade, on ``day`` (outside every other test's range),
    inserted by one statement through ``manage.py shell`` into the served terminal's database."""
    code = f"""
from django.db import connection
from orders.models import Trade
t = Trade.objects.filter(instrument__tradingsymbol="CIPLA").latest("id")
with connection.cursor() as cursor:
    cursor.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
        "INSERT INTO orders_trade (account_id, order_id, instrument_id, product, side, quantity, price, exchange, "
        "broker_trade_id, executed_at) SELECT %s, %s, %s, %s, %s, 1, 1000.05, %s, 'E2E' || i, %s FROM n",
        [{count}, t.account_id, t.order_id, t.instrument_id, t.product, t.side, t.exchange, "{day} 05:00:00"],
    )
"""
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=server["env"], check=True, timeout=300
    )


def test_a_long_range_export_runs_in_the_background_shows_progress_and_downloads(terminal_server, page):
    owner, url = demo_users(terminal_server["demo_output"])["owner"], terminal_server["url"]
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, url, owner)
    today = timezone.localdate(timezone=IST)
    since = (today - timedelta(days=120)).isoformat()  # over COMPLIANCE_EXPORT_INLINE_MAX_DAYS (92)
    page.goto(url + "/")
    row = _add_to_watchlist(page, "CIPLA")  # a symbol no other browser test trades
    row.get_by_role("button", name="Buy CIPLA").click()
    ticket = page.locator("dialog#ticket")
    ticket.get_by_label("Type").select_option("MARKET")
    ticket.get_by_label("Product").select_option("MIS")
    ticket.get_by_label("Lots").fill("1")
    ticket.get_by_role("button", name=re.compile("Place buy order")).click()
    expect(ticket.get_by_role("status")).to_contain_text("Filled")
    _more_fills(terminal_server, EXTRA, day=today - timedelta(days=100))
    page.goto(url + "/account/")
    page.get_by_role("link", name="Risk limits").click()
    page.get_by_role("link", name="Compliance reports").click()
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Trade trail").click()
    page.get_by_label("From").fill(since)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute("href", re.compile(f"from={since}"))

    page.get_by_role("link", name="Export CSV").click()
    expect(page).to_have_url(re.compile(r"/compliance/exports/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("trade trail export (CSV)")
    state = page.locator("#export-state")
    progress = page.locator("#export-progress")
    page.wait_for_function(  # HTMX polls the job: its progress moves while a worker writes it
        "() => Number(document.querySelector('#export-progress')?.value) > 0", timeout=60_000
    )
    expect(state).to_have_text("Running")
    page.screenshot_step("export-job-progress-1440")
    assert int(progress.get_attribute("max")) >= EXTRA + 1  # other browser tests' trades are in the range too
    expect(state).to_have_text("Done", timeout=240_000)
    sha256 = page.locator("#export-sha256").inner_text()
    assert len(sha256) == 64
    page.screenshot_step("export-job-done-1440")

    with page.expect_download() as download:
        page.locator("#export-download").click()
    data = download.value.path().read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256
    preamble = [line for line in data.decode().splitlines() if line.startswith("#")]
    lines = data.decode().splitlines()[len(preamble) :]  # the statement's comment lines come first
    assert preamble[0] == "# Report: Trade trail" and f"# from: {since}" in preamble
    assert preamble[-1].startswith("# Generated: ") and preamble[-1].endswith("Z)")
    assert lines[0].split(",") == list(TRADE_TRAIL_HEADER)
    assert len([line for line in lines[1:] if ",CIPLA," in line]) == EXTRA + 1
    assert download.value.suggested_filename.endswith(f"-trade-trail-{since}-to-{today.isoformat()}.csv")

    page.get_by_role("link", name="All exports").click()
    row = page.locator("table tbody tr").first
    expect(row).to_contain_text("Trade trail")
    expect(row).to_contain_text("Done")
    page.screenshot_step("exports-list-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.go_back()
    expect(page.locator("#export-state")).to_have_text("Done")
    page.screenshot_step("export-job-done-390")
