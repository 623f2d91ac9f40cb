"""What the broker contract carries for real brokers: the order's short tag, fills identified by
exchange and trade id, and an adapter bound to one account."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from brokers.adapters import registry
from brokers.adapters.base import BrokerPosition, BrokerUpdate, Capabilities, Fill
from brokers.adapters.registry import adapter_for
from brokers.models import BrokerAccount
from orders.errors import OrderInvalid
from orders.models import Order, Trade
from orders.services import apply_broker_updates, place_order
from orders.states import Status
from paper.adapter import PaperAdapter
from paper.models import PaperOrder

pytestmark = pytest.mark.django_db


def _resting(world, instrument, price):
    return place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(instrument, quantity=instrument.lot_size * 2, price=Decimal(price)),
        source="api",
    )


def test_every_order_has_a_short_alphanumeric_tag_the_broker_knows_it_by(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    orders = [_resting(world, world.equity, "990") for _ in range(3)]
    tags = [o.broker_tag for o in orders]
    assert all(re.fullmatch(r"[0-9a-f]{20}", tag) for tag in tags) and len(set(tags)) == 3
    assert sorted(PaperOrder.objects.values_list("tag", flat=True)) == sorted(tags)
    found = adapter_for(world.account).order_by_tag(tags[1])
    assert found is not None and found.broker_order_id == orders[1].broker_order_id


def test_a_trade_id_is_unique_per_exchange_not_per_account(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    nse, nfo = _resting(world, world.equity, "990"), _resting(world, world.future, "19900")
    now = timezone.now()

    def fill(order, exchange, quantity):
        return BrokerUpdate(
            account_id=order.account_id,
            tag=order.broker_tag,
            broker_order_id=order.broker_order_id,
            status=Status.PARTIALLY_FILLED,
            ts=now,
            fill=Fill("7001", quantity, order.price, now, broker_order_id=order.broker_order_id, exchange=exchange),
        )

    # NSE and NFO both number a trade 7001: two trades. The same exchange's 7001 again: a repeat.
    apply_broker_updates([fill(nse, "NSE", 1), fill(nfo, "NFO", world.future.lot_size)])
    apply_broker_updates([fill(nse, "NSE", 1)])
    assert sorted(Trade.objects.values_list("exchange", "broker_trade_id", "quantity")) == [
        ("NFO", "7001", world.future.lot_size),
        ("NSE", "7001", 1),
    ]
    assert Order.objects.get(pk=nse.pk).filled_quantity == 1


def test_an_update_names_its_order_by_tag_and_an_unknown_tag_changes_nothing(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = _resting(world, world.equity, "990")
    stranger = BrokerUpdate(
        account_id=order.account_id, tag="0" * 20, broker_order_id="X", status=Status.CANCELLED, ts=timezone.now()
    )
    assert apply_broker_updates([stranger]) == [None]
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_an_adapter_is_bound_to_its_account(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    other = BrokerAccount.objects.create(organisation=world.org, label="Other", broker="paper", client_code="P2")
    assert adapter_for(world.account).positions() == [
        BrokerPosition(instrument_id=world.equity.pk, product="MIS", net_quantity=10)
    ]
    assert adapter_for(other).positions() == [] and adapter_for(other).order_book() == []


class _EquityOnlyBroker(PaperAdapter):
    """A family that trades NSE cash only, delivery and intraday, with no SL-M orders."""

    capabilities = Capabilities(
        exchanges=frozenset({"NSE"}),
        order_types=frozenset({"MARKET", "LIMIT", "SL"}),
        products=frozenset({"CNC", "MIS"}),
    )


@pytest.mark.parametrize(
    ("instrument", "changes", "code"),
    [
        ("future", {}, "broker_cannot_exchange"),
        ("equity", {"product": "NRML"}, "broker_cannot_product"),
        ("equity", {"order_type": "SL-M", "trigger_price": Decimal("1010")}, "broker_cannot_order_type"),
    ],
)
def test_what_the_family_cannot_do_is_refused_before_anything_is_sent(world, instrument, changes, code):
    registry.register("equity-only", _EquityOnlyBroker)
    BrokerAccount.objects.filter(pk=world.account.pk).update(broker="equity-only")
    world.account.refresh_from_db()
    try:
        world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
        world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
        target = getattr(world, instrument)
        request = world.request(target, quantity=target.lot_size, **{"order_type": "MARKET", **changes})
        with pytest.raises(OrderInvalid) as refused:
            place_order(actor=world.trader, account=world.account, request=request, source="api")
        assert refused.value.code == code
        assert not Order.objects.exists() and not PaperOrder.objects.exists()
        assert AuditEvent.objects.filter(action="rms.rejected").count() == 1
    finally:
        registry.unregister("equity-only")


def test_fills_reported_without_their_trades_are_fetched_by_reconciliation(world, monkeypatch):
    from brokers.adapters import updates as update_stream
    from orders.models import FILLS_TO_FETCH, OrderEvent
    from orders.selectors import orders_to_reconcile
    from orders.services import reconcile_order

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = _resting(world, world.equity, "990")
    # The exchange fills the order, but the trades never reach the order system (a broker whose
    # updates carry only the filled quantity, as Kite's postbacks do).
    monkeypatch.setattr(update_stream, "_handlers", {})
    world.quote(world.equity, 989, asks=[(989.00, 50)], bids=[(988.95, 5)])
    monkeypatch.undo()
    paper = PaperOrder.objects.get(tag=order.broker_tag)
    assert paper.status == "FILLED" and not Trade.objects.exists()

    reported = BrokerUpdate(
        account_id=order.account_id,
        tag=order.broker_tag,
        broker_order_id=order.broker_order_id,
        status=Status.FILLED,
        ts=timezone.now(),
        filled_quantity=order.quantity,
    )
    assert apply_broker_updates([reported]) == [Order.objects.get(pk=order.pk)]
    order.refresh_from_db()
    assert order.status == Status.OPEN and order.filled_quantity == 0  # no fill is made up
    assert OrderEvent.objects.filter(order=order, kind=FILLS_TO_FETCH).exists()
    assert order in orders_to_reconcile()

    resolved = reconcile_order(order_id=order.pk)
    assert resolved.status == Status.FILLED and resolved.filled_quantity == order.quantity
    assert set(Trade.objects.values_list("broker_trade_id", flat=True)) == set(
        paper.fills.values_list("trade_id", flat=True)
    )
    assert order not in orders_to_reconcile()
