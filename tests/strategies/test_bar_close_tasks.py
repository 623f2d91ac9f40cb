"""Bar-driven deployments on Celery: beat finds the bar closes due each minute, one evaluation per
deployment and bar runs the strategy, places its orders once, and pauses a strategy that raises."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from config.celery import app as celery_app
from orders.models import Order
from strategies import metrics, runtime, tasks
from strategies.contract import Bar, Context
from strategies.engine import bucket_start, closes_bar
from strategies.models import Deployment, DeploymentEvent
from strategies.registry import register, registered
from tests.strategies.runtime_world import BAR_TS, CLOSE, BuyWhenFlat, _fresh_runtime, deploy, store_bar, store_history

__all__ = ["_fresh_runtime"]


class FiveMinutes(BuyWhenFlat):
    name = "test_buy_when_flat_5m"
    timeframe = 5


class Counting(BuyWhenFlat):
    """Counts the bars warm-up replayed into it (indicator-like instance state, not persisted)."""

    name = "test_counting"

    def __init__(self, params) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen += 1
        ctx.state["seen_by_instance"] = self.seen


for _cls in (FiveMinutes, Counting):
    if _cls.name not in registered():
        register(_cls)


def test_the_beat_runs_the_bar_close_dispatch_every_minute_a_few_seconds_after_it_turns():
    entry = celery_app.conf.beat_schedule["strategies-bar-closes"]
    assert entry["task"] == "strategies.tasks.dispatch_bar_closes"
    assert entry["options"]["countdown"] == runtime.SETTLE_SECONDS
    assert entry["schedule"].minute == set(range(60))
    assert celery_app.amqp.router.route({}, "strategies.tasks.evaluate_deployment")["queue"].name == "strategies"


def test_a_bar_of_the_strategys_timeframe_closes_on_its_boundaries_from_the_open():
    assert runtime.bar_closing(timeframe=1, now=CLOSE + timedelta(seconds=6)) == BAR_TS
    # 10:01 IST is 46 minutes after 09:15: no 5-minute bar closes then, one does at 10:05 (10:00-10:05).
    assert runtime.bar_closing(timeframe=5, now=CLOSE) is None
    assert runtime.bar_closing(timeframe=5, now=CLOSE + timedelta(minutes=4)) == BAR_TS


def test_beat_finds_each_running_bar_driven_deployment_in_schedule_whose_bar_closes(world):
    due = deploy(world)
    paused = deploy(world, status=Deployment.Status.PAUSED)
    ticking = deploy(world, kind="test_buy_above", params={"instrument_id": world.equity.pk, "above": "1"})
    finished = deploy(world, end_time=time(9, 45))  # its schedule ended before 10:01 IST
    five = deploy(world, kind="test_buy_when_flat_5m")
    found = dict(runtime.due_bar_closes(now=CLOSE))
    assert found == {due.pk: BAR_TS}
    assert {paused.pk, ticking.pk, finished.pk, five.pk}.isdisjoint(found)
    assert dict(runtime.due_bar_closes(now=CLOSE + timedelta(minutes=4))) == {
        due.pk: BAR_TS + timedelta(minutes=4),
        five.pk: BAR_TS,
    }
    saturday = CLOSE + timedelta(days=5)
    with override_settings(STRATEGIES_CALENDAR="nse"):
        assert runtime.due_bar_closes(now=saturday) == []
    with override_settings(STRATEGIES_CALENDAR="always"):  # the standalone demo trades on a weekend too
        assert dict(runtime.due_bar_closes(now=saturday)) == {due.pk: saturday - timedelta(minutes=1)}


def test_the_dispatch_sends_one_evaluation_task_per_due_deployment_with_its_bar(world, monkeypatch):
    first, second = deploy(world), deploy(world)
    sent = []
    monkeypatch.setattr(tasks.evaluate_deployment, "apply_async", lambda args, **options: sent.append((args, options)))
    monkeypatch.setattr(tasks, "_now", lambda: CLOSE + timedelta(seconds=6))
    assert tasks.dispatch_bar_closes() == 2
    assert [args for args, _ in sent] == [(first.pk, BAR_TS.isoformat()), (second.pk, BAR_TS.isoformat())]
    assert all(options["expires"] > CLOSE for _, options in sent)


def test_the_evaluation_task_is_acknowledged_late_and_has_time_limits():
    task = tasks.evaluate_deployment
    assert task.acks_late and task.reject_on_worker_lost
    assert 0 < task.soft_time_limit < task.time_limit


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_places_the_strategys_order_and_records_the_bar_and_state(world):
    world.quote(world.equity, "1000")
    deployment = deploy(world, params={"instrument_id": world.equity.pk, "quantity": 2}, multiplier=3)
    store_bar(world.equity, BAR_TS, "1000")
    label = str(deployment.pk)
    counters = (metrics.SIGNALS.labels(label, "bar"), metrics.INTENTS.labels(label), metrics.ORDERS.labels(label))
    counters += (metrics.REJECTIONS.labels(label),)
    before = [counter._value.get() for counter in counters]
    assert tasks.evaluate_deployment(deployment.pk, BAR_TS.isoformat()) == "evaluated"
    assert [counter._value.get() - was for counter, was in zip(counters, before, strict=True)] == [1, 1, 1, 0]
    order = Order.objects.get()
    assert (order.quantity, order.side, order.source, order.tag) == (6, "BUY", "strategy", "long")
    assert order.strategy == deployment.order_key
    assert order.idempotency_key.startswith(f"dep{deployment.pk}:{world.account.pk}:")
    deployment.refresh_from_db()
    assert deployment.last_bar_ts == BAR_TS
    assert deployment.state["snapshot"]["state"]["bars"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_second_run_of_the_same_bar_places_no_second_order(world):
    world.quote(world.equity, "1000")
    deployment = deploy(world)
    store_bar(world.equity, BAR_TS, "1000")
    assert tasks.evaluate_deployment(deployment.pk, BAR_TS.isoformat()) == "evaluated"
    assert tasks.evaluate_deployment(deployment.pk, BAR_TS.isoformat()) == "skipped:already_evaluated"
    # A worker that died after placing, before it wrote the bar: the redelivered task evaluates again.
    Deployment.objects.filter(pk=deployment.pk).update(last_bar_ts=None, state={})
    runtime.runs.clear()
    assert tasks.evaluate_deployment(deployment.pk, BAR_TS.isoformat()) == "evaluated"
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_strategy_that_raises_pauses_its_deployment_with_its_traceback_in_the_log(world):
    deployment = deploy(world, params={"instrument_id": world.equity.pk, "crash_on_bar": True})
    store_bar(world.equity, BAR_TS, "1000")
    errors = metrics.ERRORS.labels(str(deployment.pk))._value.get()
    assert tasks.evaluate_deployment(deployment.pk, BAR_TS.isoformat()) == "crashed"
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.PAUSED
    event = DeploymentEvent.objects.get(deployment=deployment, kind=DeploymentEvent.Kind.ERROR)
    assert event.message == "The strategy crashed on bar: RuntimeError: the strategy's own bug"
    assert "RuntimeError: the strategy's own bug" in event.data["traceback"]
    assert metrics.ERRORS.labels(str(deployment.pk))._value.get() == errors + 1
    assert not Order.objects.exists()
    assert tasks.evaluate_deployment(deployment.pk, (BAR_TS + timedelta(minutes=1)).isoformat()) == (
        "skipped:not_running"
    )


@pytest.mark.django_db(transaction=True)
def test_a_run_missing_from_the_cache_is_rebuilt_by_warm_up_over_the_stored_history(world):
    deployment = deploy(world, kind="test_counting", params={"instrument_id": world.equity.pk})
    store_history(world.equity, before=BAR_TS, minutes=30)
    store_bar(world.equity, BAR_TS, "1000")
    store_bar(world.equity, BAR_TS + timedelta(minutes=1), "1001")
    rebuilds = runtime.runs.rebuilds
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=BAR_TS)
    deployment.refresh_from_db()
    assert deployment.state["snapshot"]["state"]["seen_by_instance"] == 31  # 30 bars of warm-up, then this one
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=BAR_TS + timedelta(minutes=1))
    assert runtime.runs.rebuilds == rebuilds + 1  # the next bar advanced the cached run
    deployment.refresh_from_db()
    assert deployment.state["snapshot"]["state"]["seen_by_instance"] == 32


@pytest.mark.django_db(transaction=True)
def test_the_evaluation_lag_behind_the_due_bar_close_is_observed(world):
    deployment = deploy(world)
    store_bar(world.equity, BAR_TS, "1000")
    before = metrics.EVALUATION_LAG._sum.get()
    due = CLOSE + timedelta(seconds=runtime.SETTLE_SECONDS)
    runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=BAR_TS, now=due + timedelta(seconds=2))
    assert metrics.EVALUATION_LAG._sum.get() == pytest.approx(before + 2)


@pytest.mark.django_db(transaction=True)
def test_a_deployment_whose_strategy_is_no_longer_registered_is_paused_with_the_error_in_its_log(world):
    deployment = deploy(world)
    Deployment.objects.filter(pk=deployment.pk).update(kind="since_removed")
    assert dict(runtime.due_bar_closes(now=CLOSE)) == {deployment.pk: BAR_TS}
    assert tasks.evaluate_deployment(deployment.pk, BAR_TS.isoformat()) == "crashed"
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.PAUSED
    event = DeploymentEvent.objects.get(deployment=deployment, kind=DeploymentEvent.Kind.ERROR)
    assert event.message.startswith("the strategy cannot run: strategy_unknown:")


@given(
    minute=st.integers(min_value=0, max_value=60 * 24 * 30),
    timeframe=st.sampled_from([1, 2, 3, 5, 10, 15, 25, 30, 60, 75, 125, 375]),
)
def test_a_bar_closing_is_the_engines_bar_that_ends_with_the_minute_just_closed(minute, timeframe):
    now = BAR_TS + timedelta(minutes=minute, seconds=7)
    last_minute = now.replace(second=0) - timedelta(minutes=1)
    bar_ts = runtime.bar_closing(timeframe=timeframe, now=now)
    assert (bar_ts is not None) == closes_bar(last_minute, timeframe)
    if bar_ts is not None:
        assert bar_ts == bucket_start(last_minute, timeframe)
        assert bar_ts <= last_minute < bar_ts + timedelta(minutes=timeframe)
