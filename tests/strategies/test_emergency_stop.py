"""Emergency stop: the deployment stops, its working orders are cancelled and exactly its own positions
are squared off; the account's manual orders and positions stay."""

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Order, Position
from orders.services import place_order
from orders.states import Status
from strategies.errors import StrategyForbidden
from strategies.models import Deployment, DeploymentEvent
from strategies.selectors import deployment_pnl, deployment_positions
from strategies.services import deployment_apply, deployment_emergency_stop
from tests.strategies.strategy_world import intent, paper_account

pytestmark = pytest.mark.django_db


def test_it_squares_off_its_own_position_and_leaves_the_manual_one_alone(world, make_deployment, market):
    deployment = make_deployment()
    deployment_apply(
        deployment=deployment,
        intents=[
            intent(world.equity, quantity=3, key="in"),
            intent(world.equity, quantity=2, order_type="LIMIT", price=Decimal("990"), key="rest"),
        ],
    )
    manual = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET", quantity=10),
        source="web",
    )
    manual_resting = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("980"), quantity=4),
        source="web",
    )
    assert Position.objects.get(account=world.account, instrument=world.equity).net_quantity == 13

    outcome = deployment_emergency_stop(actor=world.trader, deployment=deployment, reason="runaway")

    assert outcome == {"cancelled": 1, "squared_off": 1}
    assert Deployment.objects.get(pk=deployment.pk).status == "stopped"
    own = Order.objects.filter(strategy=deployment.order_key).order_by("pk")
    assert [(o.side, o.quantity, o.status) for o in own] == [
        ("BUY", 3, Status.FILLED),
        ("BUY", 2, Status.CANCELLED),
        ("SELL", 3, Status.FILLED),
    ]
    exit_order = own.last()
    assert exit_order.source == "strategy" and exit_order.tag == "long" and exit_order.algo_id
    assert Position.objects.get(account=world.account, instrument=world.equity).net_quantity == 10  # the manual
    manual_resting.refresh_from_db()
    manual.refresh_from_db()
    assert manual_resting.status == Status.OPEN and manual.status == Status.FILLED
    assert all(p.net_quantity == 0 for p in deployment_positions(deployment=deployment))
    assert AuditEvent.objects.filter(action="strategy.deployment.emergency_stopped").count() == 1
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="exit").exists()


def test_it_squares_off_each_account_by_its_own_quantity(world, make_deployment, market):
    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 3)])
    deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=2, key="in")])
    deployment_emergency_stop(actor=world.admin, deployment=deployment)
    exits = Order.objects.filter(strategy=deployment.order_key, side="SELL").order_by("account_id")
    assert [(o.account_id, o.quantity) for o in exits] == [(world.account.pk, 2), (second.pk, 6)]


def test_a_second_emergency_stop_places_nothing_more(world, make_deployment, market):
    deployment = make_deployment()
    deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=2, key="in")])
    deployment_emergency_stop(actor=world.trader, deployment=deployment)
    assert deployment_emergency_stop(actor=world.trader, deployment=deployment) == {"cancelled": 0, "squared_off": 0}
    assert Order.objects.filter(strategy=deployment.order_key).count() == 2
    assert AuditEvent.objects.filter(action="strategy.deployment.emergency_stopped").count() == 1


def test_a_viewer_may_not_emergency_stop(world, make_deployment):
    deployment = make_deployment()
    with pytest.raises(StrategyForbidden):
        deployment_emergency_stop(actor=world.viewer, deployment=deployment)
    assert Deployment.objects.get(pk=deployment.pk).status == "running"


def test_positions_and_pnl_are_its_own_trades_per_leg(world, make_deployment, market):
    deployment = make_deployment()
    deployment_apply(
        deployment=deployment,
        intents=[intent(world.equity, quantity=4, key="a"), intent(world.equity, quantity=1, leg="hedge", key="b")],
    )
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET", quantity=7),
        source="web",
    )
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    deployment_apply(deployment=deployment, intents=[intent(world.equity, side="SELL", quantity=2, key="c")])
    positions = {p.leg: p for p in deployment_positions(deployment=deployment)}
    assert positions["long"].net_quantity == 2 and positions["hedge"].net_quantity == 1
    assert positions["long"].realised_pnl == (Decimal("1009.95") - Decimal("1000.05")) * 2
    pnl = deployment_pnl(deployment=deployment)
    assert pnl.realised == Decimal("19.80")
    assert pnl.unrealised == (Decimal("1010") - Decimal("1000.05")) * 3
    assert pnl.total == pnl.realised + pnl.unrealised and pnl.unpriced == ()


def test_what_a_kill_switch_closed_is_not_closed_twice(world, make_deployment, market):
    from orders.services import kill_switch_engage
    from rms.services import kill_switch_release

    deployment = make_deployment()
    deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=3, key="in")])
    kill_switch_engage(actor=world.admin, scope="account", target_id=world.account.pk, reason="drill")
    kill_switch_release(actor=world.admin, scope="account", target_id=world.account.pk)
    assert Position.objects.get(account=world.account, instrument=world.equity).net_quantity == 0

    assert deployment_emergency_stop(actor=world.trader, deployment=deployment)["squared_off"] == 0
    assert Position.objects.get(account=world.account, instrument=world.equity).net_quantity == 0
    assert not Order.objects.filter(strategy=deployment.order_key, side="SELL").exists()
    assert DeploymentEvent.objects.filter(deployment=deployment, message__contains="nothing to square off").exists()


def test_a_deployment_stopped_while_applying_places_no_more(world, make_deployment, market, monkeypatch):
    from strategies.services import execution

    deployment = make_deployment()
    real = execution.place_sliced_order

    def then_stop(**kwargs):
        orders = real(**kwargs)
        Deployment.objects.filter(pk=deployment.pk).update(status="stopped")  # as a concurrent emergency stop
        return orders

    monkeypatch.setattr(execution, "place_sliced_order", then_stop)
    results = deployment_apply(
        deployment=deployment, intents=[intent(world.equity, key="a"), intent(world.equity, key="b")]
    )
    assert [r.key for r in results] == ["a"]
    assert DeploymentEvent.objects.filter(deployment=deployment, data__code="deployment_not_running").exists()
