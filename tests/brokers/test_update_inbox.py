"""Broker order updates pass through a durable queue: stored before the broker is answered, applied
in the order received, and a drain killed half-way loses nothing and applies nothing twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.adapters import updates as update_stream
from brokers.adapters.base import BrokerUpdate, Fill
from brokers.models import InboundUpdate
from brokers.services.inbox import decode_update, encode_update, inbox_drain, inbox_pending, inbox_receive
from orders.models import Order, Trade
from orders.services import place_order
from orders.states import Status

pytestmark = pytest.mark.django_db(transaction=True)


def _resting(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    return place_order(
        actor=world.trader, account=world.account, request=world.request(world.equity, price=Decimal(990)), source="api"
    )


def _fill(order, trade_id, quantity, status=Status.PARTIALLY_FILLED):
    now = timezone.now()
    return BrokerUpdate(
        account_id=order.account_id,
        tag=order.broker_tag,
        broker_order_id=order.broker_order_id,
        status=status,
        ts=now,
        fill=Fill(trade_id, quantity, Decimal("990.05"), now, broker_order_id=order.broker_order_id, exchange="NSE"),
    )


def test_an_update_survives_encoding_exactly():
    now = timezone.now()
    update = BrokerUpdate(
        account_id=7,
        tag="a" * 20,
        broker_order_id="X1",
        status="OPEN",
        ts=now,
        fill=Fill("T1", 3, Decimal("12.3456"), now, broker_order_id="X1", exchange="NFO"),
        message="m",
    )
    assert decode_update(7, encode_update(update)) == update


def test_received_updates_are_applied_in_order_and_marked(world, django_capture_on_commit_callbacks):
    order = _resting(world)
    with django_capture_on_commit_callbacks(execute=False):  # no worker here: drain by hand
        inbox_receive([_fill(order, "T1", 4), _fill(order, "T2", 6, Status.FILLED)], source="postback")
    assert inbox_pending() == 2 and Order.objects.get(pk=order.pk).filled_quantity == 0
    assert inbox_drain() == 2
    order.refresh_from_db()
    assert order.status == Status.FILLED and order.filled_quantity == 10
    assert inbox_pending() == 0 and not InboundUpdate.objects.filter(applied_at__isnull=True).exists()


def test_a_drain_killed_after_applying_and_before_marking_applies_again_without_a_duplicate(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    order = _resting(world)
    with django_capture_on_commit_callbacks(execute=False):
        inbox_receive([_fill(order, "T1", 4)], source="websocket")
    real_emit = update_stream.emit

    def emit_then_die(updates):
        real_emit(updates)
        raise SystemExit("killed")  # the process dies before the rows are marked applied

    monkeypatch.setattr(update_stream, "emit", emit_then_die)
    with pytest.raises(SystemExit):
        inbox_drain()
    assert inbox_pending() == 1
    monkeypatch.setattr(update_stream, "emit", real_emit)
    assert inbox_drain() == 1
    assert Trade.objects.filter(order=order).count() == 1
    assert Order.objects.get(pk=order.pk).filled_quantity == 4
