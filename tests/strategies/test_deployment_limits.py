"""A deployment's own limits, enforced by rms.services.check_pre_trade with their own rule codes."""

from datetime import date
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Order
from rms.errors import RiskRejected
from rms.services import DeploymentLimits, check_deployment_limits
from strategies.services import deployment_apply
from tests.strategies.strategy_world import intent, paper_account

pytestmark = pytest.mark.django_db


def _rules() -> list[str]:
    return [e.payload_data["rule"] for e in AuditEvent.objects.filter(action="rms.rejected").order_by("pk")]


def test_max_orders_counts_the_days_orders_across_accounts(world, make_deployment, market):
    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 1)], max_orders=3)
    results = deployment_apply(
        deployment=deployment, intents=[intent(world.equity, key="a"), intent(world.equity, key="b")]
    )
    assert [r.status for r in results] == ["placed", "placed", "placed", "rejected"]
    assert results[-1].message.startswith("deployment_max_orders")
    assert _rules() == ["deployment_max_orders"]
    assert Order.objects.filter(strategy=deployment.order_key).count() == 3


def test_an_exit_passes_max_orders(world, make_deployment, market):
    deployment = make_deployment(max_orders=1)
    deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=2, key="in")])
    refused, exit_ = deployment_apply(
        deployment=deployment,
        intents=[intent(world.equity, key="more"), intent(world.equity, side="SELL", quantity=2, key="out")],
    )
    assert refused.status == "rejected" and "deployment_max_orders" in refused.message
    assert exit_.status == "placed"


def test_max_loss_stops_entries_at_the_deployments_own_loss_not_the_accounts(world, make_deployment, market):
    from orders.services import place_order

    deployment = make_deployment(max_loss=Decimal("50"))
    deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=10, key="in")])  # at 1000.05
    # a manual position that gains as much does not offset the deployment's own loss
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side="SELL", quantity=10, order_type="MARKET"),
        source="web",
    )
    world.quote(world.equity, 994, bid=993.95, ask=994.05)  # the deployment is down 60.5
    more, out = deployment_apply(
        deployment=deployment,
        intents=[intent(world.equity, key="more"), intent(world.equity, side="SELL", quantity=10, key="out")],
    )
    assert more.status == "rejected" and more.message.startswith("deployment_max_loss")
    assert out.status == "placed"  # an exit always passes


def test_max_open_positions_counts_its_open_legs(world, make_deployment, market):
    world.quote(world.future, 22000, bid=21999.9, ask=22000.1)
    deployment = make_deployment(max_open_positions=1)
    results = deployment_apply(
        deployment=deployment,
        intents=[
            intent(world.equity, key="eq"),
            intent(world.future, quantity=75, leg="fut", key="fut"),
            intent(world.equity, key="eq-more"),  # adds to the open leg: not a new position
        ],
    )
    assert [r.status for r in results] == ["placed", "rejected", "placed"]
    assert results[1].message.startswith("deployment_max_open_positions")


@pytest.mark.parametrize(
    "limits, rule",
    [
        (DeploymentLimits(key="dep-1", max_orders=5, orders_today=5), "deployment_max_orders"),
        (DeploymentLimits(key="dep-1", max_loss=Decimal(100), pnl=Decimal(-100)), "deployment_max_loss"),
        (DeploymentLimits(key="dep-1", max_open_positions=2, open_positions=2), "deployment_max_open_positions"),
    ],
)
def test_each_deployment_rule_names_its_code(limits, rule):
    with pytest.raises(RiskRejected) as refused:
        check_deployment_limits(limits)
    assert refused.value.rule == rule and refused.value.status == 422 and refused.value.extra["deployment"] == "dep-1"


@pytest.mark.parametrize(
    "limits",
    [
        DeploymentLimits(key="dep-1"),
        DeploymentLimits(key="dep-1", max_orders=5, orders_today=4),
        DeploymentLimits(key="dep-1", max_loss=Decimal(100), pnl=Decimal("-99.99")),
        DeploymentLimits(key="dep-1", max_open_positions=2, open_positions=2, opens_position=False),
    ],
)
def test_within_its_limits_an_order_passes(limits):
    check_deployment_limits(limits)


def test_check_pre_trade_applies_them_to_entries_only(world):
    from dataclasses import replace

    from orders.services.requests import order_intent
    from rms.services import RiskState, check_pre_trade

    world.quote(world.equity, 1000)
    breached = DeploymentLimits(key="dep-1", max_orders=1, orders_today=1)
    request = replace(world.request(world.equity), deployment_limits=breached)
    order = order_intent(account=world.account, actor=world.trader, instrument=world.equity, request=request)
    state = RiskState(today=date.today(), ltp=Decimal(1000), available_margin=Decimal(10**7))
    with pytest.raises(RiskRejected) as refused:
        check_pre_trade(intent=order, state=state)
    assert refused.value.rule == "deployment_max_orders"
    exit_ = replace(order, deployment=replace(breached, exits=True))
    check_pre_trade(intent=exit_, state=state)
    check_pre_trade(intent=replace(order, deployment=None), state=state)  # an ordinary order has none
