from decimal import Decimal

import pytest

from brokers.adapters.paper import faults
from brokers.models import PaperOrder
from compliance.models import AuditEvent
from orders.models import Funds, Position, Trade
from orders.services import place_order, reconcile_order
from orders.states import Status

pytestmark = pytest.mark.django_db


def test_a_lost_broker_answer_leaves_the_order_unknown_and_reconciliation_fills_it_without_a_duplicate(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    faults.inject(faults.LOSE_RESPONSE)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    assert order.status == Status.UNKNOWN and order.filled_quantity == 0
    assert PaperOrder.objects.get().status == "FILLED"  # the exchange did fill it
    assert AuditEvent.objects.filter(action="order.unknown").count() == 1

    resolved = reconcile_order(order_id=order.pk)
    assert resolved.status == Status.FILLED and resolved.filled_quantity == 10
    assert resolved.broker_order_id == PaperOrder.objects.get().broker_order_id
    again = reconcile_order(order_id=order.pk)  # idempotent
    assert again.status == Status.FILLED
    assert PaperOrder.objects.count() == 1 and Trade.objects.count() == 1
    assert Position.objects.get(account=world.account).net_quantity == 10
    assert AuditEvent.objects.filter(action="order.reconciled").count() == 1


def test_a_request_that_never_reached_the_broker_is_rejected_by_reconciliation_and_frees_its_margin(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    faults.inject(faults.DROP_REQUEST)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("990")),
        source="api",
    )
    assert order.status == Status.UNKNOWN
    assert Funds.objects.get(account=world.account).margin_blocked > 0  # unknown: still blocked
    resolved = reconcile_order(order_id=order.pk)
    assert resolved.status == Status.REJECTED
    assert PaperOrder.objects.count() == 0
    assert Funds.objects.get(account=world.account).margin_blocked == 0


def test_a_resting_order_found_by_reconciliation_becomes_open(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    faults.inject(faults.LOSE_RESPONSE)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("990")),
        source="api",
    )
    assert reconcile_order(order_id=order.pk).status == Status.OPEN


def test_fills_refused_during_a_rejected_modification_are_recovered_from_the_broker_book(world):
    from brokers.adapters.base import BrokerRejected
    from brokers.adapters.registry import get_adapter
    from orders.services import modify_order

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("990")),
        source="api",
    )
    # The exchange fills 8 while the trader's change to 6 is on its way: the OMS (already at 6) refuses
    # the 8, and the exchange then rejects the change because 8 have filled.
    paper = PaperOrder.objects.get()
    original_modify = get_adapter("paper").modify_order

    def fill_first(**kwargs):
        world.quote(world.equity, 989, asks=[(989.00, 8)], bids=[(988.95, 5)])
        return original_modify(**kwargs)

    adapter = get_adapter("paper")
    adapter.modify_order = fill_first
    try:
        with pytest.raises(BrokerRejected):
            modify_order(actor=world.trader, order=order, quantity=6)
    finally:
        del adapter.modify_order
    order.refresh_from_db()
    paper.refresh_from_db()
    assert paper.filled_quantity == 8
    assert order.quantity == 10 and order.filled_quantity == 8 and order.status == Status.PARTIALLY_FILLED
    assert Trade.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=world.account).net_quantity == 8
