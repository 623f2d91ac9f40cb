from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Funds, Position, Trade
from orders.services import place_order, reconcile_order
from orders.states import Status
from paper import faults
from paper.models import PaperOrder

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
    from orders.services import modify_order
    from paper.adapter import PaperAdapter

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
    original_modify = PaperAdapter.modify_order

    def fill_first(self, **kwargs):
        world.quote(world.equity, 989, asks=[(989.00, 8)], bids=[(988.95, 5)])
        return original_modify(self, **kwargs)

    PaperAdapter.modify_order = fill_first
    try:
        with pytest.raises(BrokerRejected):
            modify_order(actor=world.trader, order=order, quantity=6)
    finally:
        PaperAdapter.modify_order = original_modify
    order.refresh_from_db()
    paper.refresh_from_db()
    assert paper.filled_quantity == 8
    assert order.quantity == 10 and order.filled_quantity == 8 and order.status == Status.PARTIALLY_FILLED
    assert Trade.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=world.account).net_quantity == 8


def _resting_limit_order(world, price="990"):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    return place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal(price)),
        source="api",
    )


def test_a_modification_the_broker_never_received_is_undone_by_reconciliation_and_the_margin_follows(world):
    from brokers.adapters.base import BrokerUnavailable
    from orders.services import modify_order

    order = _resting_limit_order(world)
    blocked = Funds.objects.get(account=world.account).margin_blocked
    faults.inject(faults.DROP_REQUEST)
    with pytest.raises(BrokerUnavailable):
        modify_order(actor=world.trader, order=order, quantity=20, price=Decimal("980"))
    order.refresh_from_db()
    assert (order.quantity, order.price) == (20, Decimal("980"))  # as asked, until the broker's book says
    assert PaperOrder.objects.get().quantity == 10

    resolved = reconcile_order(order_id=order.pk)
    assert resolved.status == Status.OPEN
    assert (resolved.quantity, resolved.price) == (10, Decimal("990"))
    assert Funds.objects.get(account=world.account).margin_blocked == blocked
    reconciled = AuditEvent.objects.get(action="order.reconciled")
    assert set(reconciled.payload_data["terms"]) == {"quantity", "price"}
    assert reconciled.payload_data["terms"]["quantity"] == {"ours": 20, "broker": 10}
    assert resolved.events.filter(kind="reconcile").get().data["price"] == "990.0000"


def test_a_modification_whose_answer_was_lost_is_kept_by_reconciliation(world):
    from brokers.adapters.base import BrokerUnavailable
    from orders.services import modify_order

    order = _resting_limit_order(world)
    faults.inject(faults.LOSE_RESPONSE)
    with pytest.raises(BrokerUnavailable):
        modify_order(actor=world.trader, order=order, quantity=20, price=Decimal("980"))
    assert PaperOrder.objects.get().quantity == 20  # the exchange applied it

    resolved = reconcile_order(order_id=order.pk)
    assert (resolved.status, resolved.quantity, resolved.price) == (Status.OPEN, 20, Decimal("980"))
    assert "terms" not in AuditEvent.objects.get(action="order.reconciled").payload_data


def test_reconciliation_leaves_alone_a_modification_made_while_it_asked_the_broker(world, monkeypatch):
    from orders.models import Order
    from paper.adapter import PaperAdapter

    order = _resting_limit_order(world)
    original = PaperAdapter.order_by_tag

    def meanwhile(self, tag):
        found = original(self, tag)  # the broker's book as it was: 10 at 990
        Order.objects.filter(pk=order.pk).update(quantity=15, price=Decimal("985"))  # a newer change lands
        return found

    monkeypatch.setattr(PaperAdapter, "order_by_tag", meanwhile)
    resolved = reconcile_order(order_id=order.pk)
    assert (resolved.quantity, resolved.price) == (15, Decimal("985"))


def test_a_market_orders_protection_price_at_the_broker_is_not_a_term_to_reconcile(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05, asks=[(1000.05, 4)])
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET", price=None),
        source="api",
    )
    assert order.status == Status.PARTIALLY_FILLED and PaperOrder.objects.get().price is not None
    resolved = reconcile_order(order_id=order.pk)
    assert resolved.price is None and resolved.order_type == "MARKET"
    assert "terms" not in AuditEvent.objects.get(action="order.reconciled").payload_data


def test_an_unanswered_modification_stays_in_the_sweep_until_it_is_reconciled(world):
    from brokers.adapters.base import BrokerUnavailable
    from orders.selectors import orders_to_reconcile
    from orders.services import modify_order

    order = _resting_limit_order(world)
    assert order not in orders_to_reconcile()
    faults.inject(faults.DROP_REQUEST)
    with pytest.raises(BrokerUnavailable):
        modify_order(actor=world.trader, order=order, price=Decimal("980"))
    # Were the queued reconciliation lost, the minute's sweep still finds the order.
    assert list(orders_to_reconcile()) == [order]
    assert order.events.filter(kind="broker_unanswered").get().data == {"request": "modify"}
    reconcile_order(order_id=order.pk)
    assert order not in orders_to_reconcile()


def test_a_cancel_whose_answer_was_lost_is_settled_by_reconciliation(world, monkeypatch):
    from brokers.adapters.base import BrokerUnavailable
    from orders import tasks
    from orders.selectors import orders_to_reconcile
    from orders.services import cancel_order

    queued = []  # what the sweep would queue; nothing reaches the real broker queue from a test
    monkeypatch.setattr(tasks.reconcile_order_task, "delay", queued.append)
    order = _resting_limit_order(world)
    faults.inject(faults.LOSE_RESPONSE)
    with pytest.raises(BrokerUnavailable):
        cancel_order(actor=world.trader, order=order)
    order.refresh_from_db()
    assert order.status == Status.OPEN and PaperOrder.objects.get().status == "CANCELLED"
    assert tasks.reconcile_unknown_orders() == 1 and queued == [order.pk]
    assert reconcile_order(order_id=order.pk).status == Status.CANCELLED
    assert Funds.objects.get(account=world.account).margin_blocked == 0
    assert order not in orders_to_reconcile()


def test_the_sweep_still_finds_unknown_orders(world):
    from orders.selectors import orders_to_reconcile

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    faults.inject(faults.DROP_REQUEST)
    order = place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="api")
    assert order.status == Status.UNKNOWN and list(orders_to_reconcile()) == [order]
