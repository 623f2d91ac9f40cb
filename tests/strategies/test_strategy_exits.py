"""Strategy-level exits on the deployment's combined P&L (stop-loss, target, trailing stop) and its
square-off time: the deployment's own positions squared off, the deployment stopped, the exit logged and
audited with its reason; its P&L marked at most once a minute."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from audit.models import AuditEvent
from orders.models import Order
from strategies import exits, runtime
from strategies.models import Deployment, DeploymentEvent, DeploymentMark
from tests.strategies.runtime_world import BAR_TS, CLOSE, _fresh_runtime, deploy, store_bar

__all__ = ["_fresh_runtime"]


def _long_ten(world, **exit_fields) -> Deployment:
    """A deployment long 10 of the equity at 1000.05 (bought on the paper exchange at the ask)."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    deployment = deploy(world, params={"instrument_id": world.equity.pk, "quantity": 10}, **exit_fields)
    store_bar(world.equity, BAR_TS, "1000")
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=BAR_TS)
    assert Order.objects.filter(side="BUY", status="FILLED").count() == 1
    deployment.refresh_from_db()
    return deployment


@override_settings(STRATEGIES_CALENDAR="nse")
def test_each_exit_fires_at_its_threshold_and_not_before(world):
    deployment = Deployment(mtm_stop_loss=Decimal(100), mtm_target=Decimal(300))
    reason = exits.exit_reason
    assert reason(deployment, pnl=Decimal("-99.99"), now=CLOSE) is None
    assert reason(deployment, pnl=Decimal("-100"), now=CLOSE) == "mtm_stop_loss"
    assert reason(deployment, pnl=Decimal("299.99"), now=CLOSE) is None
    assert reason(deployment, pnl=Decimal("300"), now=CLOSE) == "mtm_target"
    deployment.trailing_stop = Decimal(50)
    assert reason(deployment, pnl=Decimal("-50"), now=CLOSE) == "trailing_stop"  # 50 below the peak of 0
    deployment.peak_pnl = Decimal(200)
    assert reason(deployment, pnl=Decimal("151"), now=CLOSE) is None
    assert reason(deployment, pnl=Decimal("150"), now=CLOSE) == "trailing_stop"
    deployment.square_off_time = time(15, 15)
    at_square_off = datetime(2026, 11, 30, 9, 45, tzinfo=UTC)  # 15:15 IST on a Monday
    assert reason(deployment, pnl=None, now=at_square_off) == "square_off_time"
    assert reason(deployment, pnl=Decimal(200), now=at_square_off - timedelta(minutes=1)) is None
    assert reason(deployment, pnl=None, now=at_square_off + timedelta(days=5)) is None  # a Saturday


@pytest.mark.django_db(transaction=True)
def test_a_loss_past_the_stop_squares_the_deployment_off_and_stops_it_with_the_reason_audited(world):
    deployment = _long_ten(world, mtm_stop_loss=Decimal(100))
    world.quote(world.equity, "990.10", bid="990.05", ask="990.15")
    assert exits.check_exits(deployment=deployment, now=CLOSE) is None  # -99.5: not yet
    world.quote(world.equity, "990", bid="989.95", ask="990.05")
    assert exits.check_exits(deployment=deployment, now=CLOSE) == "mtm_stop_loss"
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.STOPPED
    square_off = Order.objects.get(side="SELL")
    assert (square_off.quantity, square_off.strategy) == (10, deployment.order_key)
    event = DeploymentEvent.objects.get(deployment=deployment, kind="exit", data__reason="mtm_stop_loss")
    assert Decimal(event.data["pnl"]) == Decimal("-100.5")
    audit = AuditEvent.objects.get(action="strategies.deployment_exit")
    assert json.loads(audit.payload)["reason"] == "mtm_stop_loss"
    # Taken once: a stopped deployment takes no second exit.
    assert not exits.take_exit(deployment=deployment, reason="mtm_stop_loss", pnl=None)
    assert AuditEvent.objects.filter(action="strategies.deployment_exit").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_target_takes_the_profit(world):
    deployment = _long_ten(world, mtm_target=Decimal(200))
    world.quote(world.equity, "1020.10", bid="1020.05", ask="1020.15")
    assert exits.check_exits(deployment=deployment, now=CLOSE) == "mtm_target"
    assert Deployment.objects.get(pk=deployment.pk).status == Deployment.Status.STOPPED


@pytest.mark.django_db(transaction=True)
def test_the_trailing_stop_follows_the_peak_and_exits_when_the_pnl_falls_back(world):
    deployment = _long_ten(world, trailing_stop=Decimal(100))
    world.quote(world.equity, "1030.05", bid="1030", ask="1030.10")
    assert exits.check_exits(deployment=deployment, now=CLOSE) is None
    assert Deployment.objects.get(pk=deployment.pk).peak_pnl == Decimal(300)
    world.quote(world.equity, "1020.10", bid="1020.05", ask="1020.15")
    assert exits.check_exits(deployment=deployment, now=CLOSE) is None  # 200.5: 99.5 below the peak
    world.quote(world.equity, "1020.05", bid="1020", ask="1020.10")
    assert exits.check_exits(deployment=deployment, now=CLOSE) == "trailing_stop"


@pytest.mark.django_db(transaction=True)
def test_the_square_off_time_closes_the_deployment_whatever_its_pnl(world):
    deployment = _long_ten(world, square_off_time=time(15, 15))
    assert exits.check_exits(deployment=deployment, now=datetime(2026, 11, 30, 9, 46, tzinfo=UTC)) == (
        "square_off_time"
    )
    assert Order.objects.filter(side="SELL", quantity=10).exists()


@pytest.mark.django_db(transaction=True)
def test_the_pnl_is_marked_at_most_once_a_minute(world):
    deployment = _long_ten(world)
    world.quote(world.equity, "1010.05", bid="1010", ask="1010.10")
    for second in (0, 20, 59):
        exits.check_exits(deployment=deployment, now=CLOSE + timedelta(seconds=second))
    exits.check_exits(deployment=deployment, now=CLOSE + timedelta(minutes=1))
    marks = list(DeploymentMark.objects.filter(deployment=deployment).order_by("ts").values_list("ts", "pnl"))
    assert marks == [(CLOSE, Decimal(100)), (CLOSE + timedelta(minutes=1), Decimal(100))]


@given(
    pnl=st.decimals(min_value=-(10**9), max_value=10**9, places=2),
    stop=st.none() | st.decimals(min_value=0, max_value=10**6, places=2),
    target=st.none() | st.decimals(min_value=0, max_value=10**6, places=2),
    trailing=st.none() | st.decimals(min_value=0, max_value=10**6, places=2),
    peak=st.none() | st.decimals(min_value=-(10**6), max_value=10**9, places=2),
)
def test_an_exit_fires_exactly_when_its_threshold_is_crossed_whatever_the_numbers(pnl, stop, target, trailing, peak):
    deployment = Deployment(
        mtm_stop_loss=stop, mtm_target=target, trailing_stop=trailing, peak_pnl=peak, square_off_time=None
    )
    reason = exits.exit_reason(deployment, pnl=pnl, now=CLOSE)
    expected = [
        name
        for name, fired in (
            ("mtm_stop_loss", stop is not None and pnl <= -stop),
            ("mtm_target", target is not None and pnl >= target),
            ("trailing_stop", trailing is not None and pnl <= max(peak or 0, 0) - trailing),
        )
        if fired
    ]
    assert reason == (expected[0] if expected else None)
