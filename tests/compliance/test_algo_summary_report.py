"""The algo order summary: per IST day, algo id and account, orders, trades, rejections and the OPS peak
against the 10 orders-per-second threshold, exported and audited."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Organisation
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance.reports.algo_summary import HEADER, algo_summary_list
from compliance.selectors import IST
from orders.models import Order, Trade
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
URL = "/orgs/acme/compliance/algos/"
EXPORT = URL + "export/"


def _order(world, algo: str, at: datetime, *, status: str = "OPEN", account=None) -> Order:
    order = Order.objects.create(
        account=account or world.account,
        instrument=world.equity,
        side="BUY",
        quantity=1,
        order_type="LIMIT",
        product="MIS",
        price=Decimal("1000"),
        margin_price=Decimal("1000"),
        source="strategy",
        algo_id=algo,
        status=status,
    )
    Order.objects.filter(pk=order.pk).update(created_at=at)
    return order


def _trade(order: Order, at: datetime, n: int) -> Trade:
    return Trade.objects.create(
        account=order.account, order=order, instrument=order.instrument, product="MIS", side="BUY", quantity=1,
        price=Decimal("1000"), exchange="NSE", broker_trade_id=f"T{n}", executed_at=at,
    )  # fmt: skip


@pytest.fixture
def day():
    """Today at 10:00 IST, and the same day."""
    today = timezone.localdate(timezone=IST)
    return datetime.combine(today, time(10, 0), tzinfo=IST), today


def test_twelve_orders_in_one_second_are_a_peak_of_12_over_the_threshold(world, day, signed_in):
    ten, today = day
    burst = [_order(world, "ALGO-1", ten + timedelta(milliseconds=80 * i)) for i in range(12)]  # 0 to 880 ms
    _order(world, "ALGO-1", ten + timedelta(seconds=5), status="REJECTED")
    _trade(burst[0], ten + timedelta(seconds=1), 1)
    _trade(burst[1], ten + timedelta(seconds=2), 2)
    spaced = [_order(world, "GENERIC", ten + timedelta(seconds=i)) for i in range(3)]  # one a second
    _trade(spaced[0], ten + timedelta(seconds=3), 3)
    rows = algo_summary_list(organisation=world.org, date_from=today, date_to=today)
    found = {r.algo_id: (r.orders, r.trades, r.rejections, r.peak_ops, r.over_threshold) for r in rows}
    assert found == {"ALGO-1": (13, 2, 1, 12, True), "GENERIC": (3, 1, 0, 1, False)}
    [algo] = [r for r in rows if r.algo_id == "ALGO-1"]
    assert algo.peak_at == ten + timedelta(milliseconds=880)
    html = signed_in(world.owner).get(URL).content.decode()
    row_id = f'id="algo-{today.isoformat()}-{world.account.pk}-algo-1" class="over-threshold"'
    assert row_id in html and "over 10" in html


def test_ten_orders_in_a_second_are_at_the_threshold_and_a_window_slides(world, day):
    ten, today = day
    # 10 orders in 0-900 ms, then 5 more in 1000-1400 ms: any one second holds at most 10.
    for i in range(10):
        _order(world, "ALGO-2", ten + timedelta(milliseconds=100 * i))
    for i in range(5):
        _order(world, "ALGO-2", ten + timedelta(milliseconds=1000 + 100 * i))
    [row] = algo_summary_list(organisation=world.org, date_from=today, date_to=today)
    assert (row.orders, row.peak_ops, row.over_threshold) == (15, 10, False)


def test_the_export_has_exact_rows_and_filters_by_algo_and_account_and_is_audited(world, day, signed_in):
    ten, today = day
    second = BrokerAccount.objects.create(organisation=world.org, label="Second", broker="paper", client_code="P2")
    _order(world, "ALGO-1", ten)
    _order(world, "ALGO-1", ten, account=second)
    _order(world, "ALGO-3", ten)
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    _order(world, "ALGO-1", ten, account=theirs)
    client = signed_in(world.owner)
    response = client.get(EXPORT + "?algo=ALGO-1")
    rows = csv_rows(b"".join(response.streaming_content))
    peak_at = ten.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert rows == [
        list(HEADER),
        [today.isoformat(), "acme", "P1", "ALGO-1", "1", "0", "0", "1", peak_at, "no"],
        [today.isoformat(), "acme", "P2", "ALGO-1", "1", "0", "0", "1", peak_at, "no"],
    ]
    response = client.get(EXPORT + f"?account={second.pk}")
    assert [row[2] for row in csv_rows(b"".join(response.streaming_content))][1:] == ["P2"]
    exported = AuditEvent.objects.filter(action="compliance.report_exported").first()
    assert exported.payload_data["report"] == "algo_summary" and exported.payload_data["rows"] == 2


def test_an_empty_range_is_an_empty_report_and_a_header_only_export(world, signed_in):
    client = signed_in(world.owner)
    assert "No algo orders or trades in this range." in client.get(URL).content.decode()
    assert csv_rows(b"".join(client.get(EXPORT).streaming_content)) == [list(HEADER)]


def test_orders_fall_on_their_ist_day(world):
    today = timezone.localdate(timezone=IST)
    midnight = datetime.combine(today, time.min, tzinfo=IST)
    _order(world, "ALGO-1", midnight - timedelta(seconds=1))
    _order(world, "ALGO-1", midnight)
    rows = algo_summary_list(organisation=world.org, date_from=today - timedelta(days=1), date_to=today)
    assert [(r.day, r.orders) for r in rows] == [(today, 1), (today - timedelta(days=1), 1)]
