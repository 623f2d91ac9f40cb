"""The organisation's order-to-trade ratio (Owner and Admin): per account and IST day, the orders,
modifications and cancellations sent and the trades made, their ratio, and its audited CSV export."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Membership, Organisation, Role
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance.selectors import IST, order_to_trade_list
from orders.models import Order, OrderEvent, Trade
from orders.services import cancel_order, modify_order, place_order
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
URL = "/orgs/acme/compliance/order-to-trade/"
EXPORT = URL + "export/"


def _limit_buy(world, price: str, account=None) -> Order:
    return place_order(
        actor=world.trader,
        account=account or world.account,
        request=world.request(world.equity, price=Decimal(price)),
        source="web",
    )


def _known_sequence(world) -> list[Order]:
    """Place 3 resting buys, modify one, cancel one, then a tick fills the other two: 2 trades."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    first, second, third = (_limit_buy(world, p) for p in ("990", "991", "992"))
    modify_order(actor=world.trader, order=first, price=Decimal("993"))
    cancel_order(actor=world.trader, order=third)
    world.quote(world.equity, 985, bid=984.95, ask=985.05)
    return [first, second, third]


def _today() -> str:
    return timezone.localdate(timezone=IST).isoformat()


def test_a_known_sequence_counts_3_orders_1_modification_1_cancellation_2_trades_ratio_2_50(world, signed_in):
    _known_sequence(world)
    assert Trade.objects.count() == 2
    [row] = order_to_trade_list(organisation=world.org, date_from=timezone.localdate(), date_to=timezone.localdate())
    assert (row.orders, row.modifications, row.cancellations, row.trades) == (3, 1, 1, 2)
    assert row.ratio == Decimal("2.50")
    html = signed_in(world.owner).get(URL).content.decode()
    assert f'id="otr-{world.account.pk}-{_today()}"' in html
    for name, value in (("orders", 3), ("modifications", 1), ("cancellations", 1), ("trades", 2), ("ratio", "2.50")):
        assert f'<td class="num {name}">{value}</td>' in html
    assert "(orders + modifications + cancellations) / trades" in html


def test_a_pending_order_cancelled_before_it_was_sent_counts_as_a_cancellation(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = _limit_buy(world, "990")
    Order.objects.filter(pk=order.pk).update(status="PENDING", sent_at=None)  # as if still on its way out
    order.refresh_from_db()
    cancel_order(actor=world.trader, order=order)
    assert OrderEvent.objects.filter(order=order, kind="cancel").exists()
    [row] = order_to_trade_list(organisation=world.org, date_from=timezone.localdate(), date_to=timezone.localdate())
    assert (row.orders, row.cancellations, row.trades, row.ratio) == (1, 1, 0, None)


def test_each_count_falls_on_the_ist_day_it_happened(world, signed_in):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    early = _limit_buy(world, "990")
    _limit_buy(world, "991")
    today = timezone.localdate(timezone=IST)
    last_second_of_yesterday = datetime.combine(today, time.min, tzinfo=IST) - timedelta(seconds=1)
    Order.objects.filter(pk=early.pk).update(created_at=last_second_of_yesterday)
    modify_order(actor=world.trader, order=early, price=Decimal("989"))
    OrderEvent.objects.filter(order=early, kind="modify").update(created_at=last_second_of_yesterday)
    rows = order_to_trade_list(organisation=world.org, date_from=today - timedelta(days=1), date_to=today)
    assert [(r.day, r.orders, r.modifications, r.trades) for r in rows] == [
        (today, 1, 0, 0),
        (today - timedelta(days=1), 1, 1, 0),
    ]
    html = signed_in(world.admin).get(URL).content.decode()  # the default range: today only
    assert f'id="otr-{world.account.pk}-{today.isoformat()}"' in html
    assert (today - timedelta(days=1)).isoformat() not in html
    assert '<span class="muted">no trades</span>' in html


def test_the_account_filter_keeps_one_account_and_another_organisation_is_never_counted(world, signed_in):
    second = BrokerAccount.objects.create(organisation=world.org, label="Second", broker="paper", client_code="P2")
    other = Organisation.objects.create(name="Other", slug="other")
    # a code no CSRF token (letters and digits) can contain, so the page's absence of it means something
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="THEIRS-9")
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    _limit_buy(world, "990")
    _limit_buy(world, "990", account=second)
    _limit_buy(world, "990", account=theirs)
    client = signed_in(world.owner)
    html = client.get(URL).content.decode()
    assert f'id="otr-{world.account.pk}-' in html and f'id="otr-{second.pk}-' in html
    assert f'id="otr-{theirs.pk}-' not in html and "THEIRS-9" not in html
    html = client.get(URL, {"account": second.pk}).content.decode()
    assert f'id="otr-{second.pk}-' in html and f'id="otr-{world.account.pk}-' not in html


def test_the_filter_form_swaps_only_the_report_for_htmx(world, signed_in):
    response = signed_in(world.owner).get(URL, {"from": _today(), "to": _today()}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and html.lstrip().startswith('<div id="report">')
    assert "No orders or trades in this range." in html


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "yesterday"}, "from", "date_invalid"),
        ({"to": "2025-02-30"}, "to", "date_invalid"),
        ({"from": "2025-03-02", "to": "2025-03-01"}, "from", "date_range_reversed"),
        ({"from": "2024-01-01", "to": "2025-01-01"}, "to", "date_range_too_long"),
        ({"account": "x"}, "account", "account_not_found"),
    ],
)
def test_a_bad_filter_is_a_422_naming_the_field_and_exports_nothing(world, signed_in, params, field, code):
    client = signed_in(world.owner)
    for url, headers in ((URL, HX), (URL, {}), (EXPORT, {})):
        response = client.get(url, params, **headers)
        html = response.content.decode()
        assert response.status_code == 422
        assert f'id="filter-{field}-error" data-code="{code}"' in html and f'role="alert" data-code="{code}"' in html
        assert 'id="order-to-trade"' not in html and 'id="report-export"' not in html
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_a_366_day_range_is_accepted(world, signed_in):
    response = signed_in(world.owner).get(URL, {"from": "2024-01-01", "to": "2024-12-31"})
    assert response.status_code == 200


@pytest.mark.parametrize(("who", "status"), [("trader", 403), ("viewer", 403), ("outsider", 404)])
def test_traders_viewers_and_outsiders_are_refused_and_nothing_is_exported_or_audited(
    world, signed_in, django_user_model, who, status
):
    _known_sequence(world)
    if who == "outsider":
        user = django_user_model.objects.create_user("stranger")
        other = Organisation.objects.create(name="Other", slug="other")
        Membership.objects.create(user=user, organisation=other, role=Role.OWNER)
    else:
        user = getattr(world, who)
    client = signed_in(user)
    for url in (URL, EXPORT):
        response = client.get(url)
        assert response.status_code == status and response.get("Content-Type", "").startswith("text/html")
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_the_csv_export_has_a_header_the_rows_and_is_audited(world, signed_in):
    _known_sequence(world)
    response = signed_in(world.admin).get(EXPORT, {"account": world.account.pk}, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = _today()
    assert response["Content-Disposition"] == f'attachment; filename="acme-order-to-trade-{today}-to-{today}.csv"'
    rows = csv_rows(b"".join(response.streaming_content))
    assert rows == [
        ["date_ist", "client_code", "orders", "modifications", "cancellations", "trades", "ratio"],
        [today, "P1", "3", "1", "1", "2", "2.50"],
    ]
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert event.actor_name == "admin" and event.ip == "10.1.2.3"
    assert (event.target_type, event.target_id) == ("accounts.organisation", str(world.org.pk))
    assert event.payload_data == {
        "report": "order_to_trade",
        "format": "csv",
        "filters": {"from": today, "to": today, "account": "P1", "algo_id": "", "source": ""},
        "rows": 1,
    }
