"""The tick runner (``run_strategies``): tick-driven deployments' on_tick and every deployment's exits on
each tick batch, deployments shared between runners by leases, ticks read from the fan-out channel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from marketdata.quotes import Quote
from marketdata.tick_channel import encode_batch, ticks_channel
from orders.models import Order
from strategies import runner as runner_module
from strategies import runtime
from strategies.models import Deployment
from strategies.runner import Leases, TickRunner, listen_redis
from tests.strategies.runtime_world import BAR_TS, CLOSE, ROOT, _fresh_runtime, deploy, store_bar

__all__ = ["_fresh_runtime"]


@pytest.fixture(autouse=True)
def _no_leases():
    Leases._memory.clear()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(f"{runner_module.LEASE_PREFIX}*"):
            client.delete(key)
    yield
    Leases._memory.clear()


def _tick(instrument, ltp: str, *, at=CLOSE) -> Quote:
    return Quote(instrument_id=instrument.pk, ltp=Decimal(ltp), ts=at)


def _above(world, level="1000"):
    return deploy(world, kind="test_buy_above", params={"instrument_id": world.equity.pk, "above": level})


@pytest.mark.django_db(transaction=True)
def test_a_tick_driven_deployment_acts_on_the_tick_that_crosses_its_level(world, market):
    deployment = _above(world, "1000.50")
    runner = TickRunner()
    runner.handle([_tick(world.equity, "1000.40")], now=CLOSE)
    assert not Order.objects.exists()
    runner.handle([_tick(world.equity, "1000.60", at=CLOSE + timedelta(seconds=1))], now=CLOSE)
    order = Order.objects.get()
    assert (order.side, order.quantity, order.strategy) == ("BUY", 1, deployment.order_key)
    deployment.refresh_from_db()
    assert deployment.state["snapshot"]["state"]["ticks"] == 2
    runner.close()


@pytest.mark.django_db(transaction=True)
def test_two_runners_never_run_one_deployment_twice_and_one_takes_over_when_the_other_stops(world, market):
    first_deployment, second_deployment = _above(world), _above(world)
    first, second = TickRunner(lease_seconds=5), TickRunner(lease_seconds=5)
    first.refresh()
    second.refresh()
    assert first.held == {first_deployment.pk, second_deployment.pk} and second.held == set()
    for runner in (first, second):
        runner.handle([_tick(world.equity, "1001")], now=CLOSE)
    assert Order.objects.count() == 2  # one for each deployment, not one per runner
    first.close()  # a runner stopping cleanly gives its leases up at once
    second.refresh()
    assert second.held == {first_deployment.pk, second_deployment.pk}
    second.close()


@pytest.mark.django_db(transaction=True)
def test_a_dead_runners_deployments_are_taken_over_once_its_leases_lapse(world):
    deployment = _above(world)
    dead, alive = TickRunner(lease_seconds=0.5), TickRunner(lease_seconds=0.5)
    dead.refresh()  # and never renews again
    alive.refresh()
    assert alive.held == set()
    time.sleep(0.7)
    alive.refresh()
    assert alive.held == {deployment.pk}
    dead.refresh()  # it comes back: its lease was lost, so it runs nothing
    assert dead.held == set()
    alive.close()


@pytest.mark.django_db(transaction=True)
def test_every_held_deployment_has_its_exits_checked_on_a_tick_batch(world, market):
    bar_driven = deploy(world, params={"instrument_id": world.equity.pk, "quantity": 10}, mtm_stop_loss=Decimal(50))
    store_bar(world.equity, BAR_TS, "1000")
    runtime.evaluate_bar(deployment_id=bar_driven.pk, bar_ts=BAR_TS)
    runner = TickRunner()
    world.quote(world.equity, "994", bid="993.95", ask="994.05", tick=False)
    runner.handle([_tick(world.equity, "994")], now=CLOSE)
    assert Deployment.objects.get(pk=bar_driven.pk).status == Deployment.Status.STOPPED
    assert Order.objects.filter(side="SELL", quantity=10).exists()
    assert bar_driven.pk not in runner.deployments
    runner.close()


def test_the_inbox_keeps_the_newest_tick_of_each_instrument():
    runner = TickRunner(owner="inbox")
    runner.offer([Quote(instrument_id=1, ltp=Decimal(1), ts=CLOSE), Quote(instrument_id=2, ltp=Decimal(5), ts=CLOSE)])
    runner.offer([Quote(instrument_id=1, ltp=Decimal(2), ts=CLOSE)])
    assert sorted((q.instrument_id, q.ltp) for q in runner.take(0)) == [(1, Decimal(2)), (2, Decimal(5))]
    assert runner.take(0) == []


@pytest.mark.redis
def test_the_runner_reads_the_feeds_tick_batches_from_the_fanout_channel():
    import redis

    runner = TickRunner(owner="reader")
    stopping = threading.Event()
    reader = threading.Thread(target=listen_redis, args=(runner, stopping), daemon=True)
    reader.start()
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        received: list[Quote] = []
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            client.publish(ticks_channel(), encode_batch([Quote(instrument_id=7, ltp=Decimal("12.5"), ts=CLOSE)]))
            received = runner.take(0.2)
        assert [(q.instrument_id, q.ltp, q.ts) for q in received] == [(7, Decimal("12.5"), CLOSE)]
    finally:
        stopping.set()
        reader.join(5)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_run_strategies_runs_until_sigterm_and_gives_its_leases_up(world):
    deployment = _above(world)
    url = urlsplit(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))}
    command = [sys.executable, "manage.py", "run_strategies", "--metrics-port", "0", "--lease-seconds", "30"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = Leases(owner="probe", ttl_seconds=30)
    try:
        import redis

        client, key = redis.Redis.from_url(settings.REDIS_URL), f"{runner_module.LEASE_PREFIX}{deployment.pk}"
        deadline = time.monotonic() + 60
        while not client.exists(key):
            assert process.poll() is None and time.monotonic() < deadline, "the runner took no lease"
            time.sleep(0.2)
        assert probe.acquire([deployment.pk]) == set()  # the runner holds it
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "stopped after" in output
    assert probe.acquire([deployment.pk]) == {deployment.pk}  # released at the stop


@pytest.mark.django_db(transaction=True)
def test_a_tick_driven_strategy_that_raises_is_paused_and_the_runner_goes_on(world, market):
    crashing = _above(world, "not a price")  # the parameters no longer validate: it cannot be built
    healthy = _above(world, "1000")
    runner = TickRunner()
    runner.handle([_tick(world.equity, "1001")], now=CLOSE)
    assert Deployment.objects.get(pk=crashing.pk).status == Deployment.Status.PAUSED
    assert crashing.pk not in runner.deployments
    assert Order.objects.get().strategy == healthy.order_key
    runner.close()


@pytest.mark.django_db(transaction=True)
def test_a_runner_that_stalled_past_its_lease_stops_running_the_deployments_another_took(world, market):
    deployments = {_above(world).pk, _above(world).pk}
    stalled, other = TickRunner(lease_seconds=0.5, refresh_seconds=0.2), TickRunner(lease_seconds=0.5)
    stalled.refresh()
    time.sleep(0.7)  # its leases lapse, as in a batch that took too long
    other.refresh()
    assert other.held == deployments
    stalled.handle([_tick(world.equity, "1001")], now=CLOSE)
    assert stalled.held == set() and stalled.deployments == {}
    assert not Order.objects.exists()
    other.handle([_tick(world.equity, "1001")], now=CLOSE)
    assert Order.objects.count() == 2
    other.close()
