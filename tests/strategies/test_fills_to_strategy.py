"""A deployment's fills reach its strategy: at its next event, before that event's handler, read from the
order system's trades by a cursor kept with the strategy's snapshot (once each, in base quantity)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orders.models import Order, Trade
from strategies import runtime
from strategies.models import Deployment, DeploymentEvent
from tests.strategies.runtime_world import BAR_TS, _fresh_runtime, deploy, store_bar

__all__ = ["_fresh_runtime"]
NEXT = BAR_TS + timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)
def test_a_fill_reaches_on_fill_at_the_next_bar_and_the_leg_holds_the_base_quantity(world, market):
    deployment = deploy(world, params={"instrument_id": world.equity.pk, "quantity": 2}, multiplier=3)
    store_bar(world.equity, BAR_TS, "1000")
    store_bar(world.equity, NEXT, "1001")
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=BAR_TS)
    trade = Trade.objects.get()
    assert trade.quantity == 6  # filled on the paper exchange at once: 2 x the account's multiplier 3
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=NEXT)
    deployment.refresh_from_db()
    snapshot = deployment.state["snapshot"]
    assert snapshot["positions"] == {"long": 2} and snapshot["legs"] == {"long": world.equity.pk}
    assert snapshot["state"]["fills"] == 1
    assert deployment.state["fills_after"] == trade.pk
    assert Order.objects.count() == 1  # long at the next bar: the strategy saw its position and bought nothing
    assert DeploymentEvent.objects.filter(deployment=deployment, message="filled BUY 2 long").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_rebuilt_run_is_not_told_of_a_fill_twice(world, market):
    deployment = deploy(world)
    for minute in range(3):
        store_bar(world.equity, BAR_TS + timedelta(minutes=minute), "1000")
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=BAR_TS)
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=NEXT)
    runtime.runs.clear()  # another worker takes the next bar: it rebuilds from the snapshot
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=NEXT + timedelta(minutes=1))
    deployment.refresh_from_db()
    assert deployment.state["snapshot"]["state"]["fills"] == 1
    assert deployment.state["snapshot"]["positions"] == {"long": 1}


@pytest.mark.django_db(transaction=True)
def test_fills_of_another_deployment_on_the_same_account_are_not_its_own(world, market):
    mine, other = deploy(world), deploy(world)
    store_bar(world.equity, BAR_TS, "1000")
    store_bar(world.equity, NEXT, "1000")
    runtime.evaluate_bar(deployment_id=other.pk, bar_ts=BAR_TS)
    runtime.evaluate_bar(deployment_id=mine.pk, bar_ts=NEXT)
    mine.refresh_from_db()
    assert mine.state["snapshot"]["positions"] == {}
    assert "fills" not in mine.state["snapshot"]["state"]
    assert Deployment.objects.get(pk=other.pk).last_bar_ts == BAR_TS
