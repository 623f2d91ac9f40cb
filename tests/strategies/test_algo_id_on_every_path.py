"""Every order a deployment causes carries its algo id and source: entries, exits, orders sliced at the
freeze quantity, modifies and cancels (which keep them), and emergency-stop square-offs."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Order
from orders.services import cancel_order, modify_order
from orders.states import Status
from paper.adapter import PaperAdapter
from strategies.selectors import deployment_positions
from strategies.services import algo_id_create, deployment_apply, deployment_emergency_stop
from tests.strategies.strategy_world import intent, paper_account

pytestmark = pytest.mark.django_db


def test_every_order_a_deployment_causes_carries_its_algo_id_and_source(world, make_deployment, market, monkeypatch):
    sent: list[str] = []  # the algo id of each order the broker was sent
    place_in_transaction = PaperAdapter.place_order_in_transaction

    def watched(self, request):
        sent.append(request.algo_id)
        return place_in_transaction(self, request)

    monkeypatch.setattr(PaperAdapter, "place_order_in_transaction", watched)
    world.quote(world.future, 200, bid=199.9, ask=200.1)
    second = paper_account(world, "Paper 2", "P2")
    algo = algo_id_create(actor=world.owner, organisation=world.org, code="NSE-ALGO-42")
    deployment = make_deployment([(world.account, 1), (second, 2)], algo_id=algo)

    # entries: a market order, a resting limit order, and one above the freeze quantity (1800), sliced
    deployment_apply(
        deployment=deployment,
        intents=[
            intent(world.equity, quantity=3, key="entry"),
            intent(world.equity, quantity=1, order_type="LIMIT", price=Decimal("990"), key="resting"),
            intent(world.future, quantity=1200, leg="fut", key="big"),  # 1200 and 2400: the second is sliced
        ],
    )
    sliced = Order.objects.filter(strategy=deployment.order_key, account=second, instrument=world.future)
    assert sorted(o.quantity for o in sliced) == [600, 1800] and len({o.slice_group for o in sliced}) == 1

    # an exit from the strategy, through the webhook
    deployment_apply(deployment=deployment, intents=[intent(world.equity, side="SELL", key="exit")], source="webhook")

    # a modify and a cancel of a resting order keep it
    resting = Order.objects.get(strategy=deployment.order_key, account=world.account, price=Decimal("990"))
    modify_order(actor=world.trader, order=resting, price=Decimal("991"))
    resting.refresh_from_db()
    assert resting.price == Decimal("991") and resting.algo_id == "NSE-ALGO-42"
    cancel_order(actor=world.trader, order=resting)

    # the emergency stop cancels the other resting order and squares off every position it holds
    outcome = deployment_emergency_stop(actor=world.trader, deployment=deployment)
    assert outcome["cancelled"] == 1 and outcome["squared_off"] >= 4

    own = Order.objects.filter(strategy=deployment.order_key)
    kinds = {(o.side, o.order_type, o.status) for o in own}
    assert ("SELL", "MARKET", Status.FILLED) in kinds and ("BUY", "LIMIT", Status.CANCELLED) in kinds
    for order in own:
        assert order.algo_id == "NSE-ALGO-42", order
        assert order.source in {"strategy", "webhook"}
        assert order.tag in {"long", "fut"}
    assert {o.source for o in own} == {"strategy", "webhook"}
    # the broker was sent the algo id with every order
    assert len(sent) == own.count() and set(sent) == {"NSE-ALGO-42"}
    # the deployment holds nothing now, and no order was placed without its order key
    assert all(p.net_quantity == 0 for p in deployment_positions(deployment=deployment))
    assert not Order.objects.exclude(strategy=deployment.order_key).exists()
    placed = AuditEvent.objects.filter(action="order.placed")
    assert {e.payload_data["source"] for e in placed} == {"strategy", "webhook"}
