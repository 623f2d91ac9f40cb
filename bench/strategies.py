"""Running deployments: bar closes evaluated by Celery workers, and tick-driven deployments on a tick stream.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/strategies.py [--bar-deployments 200]
        [--tick-deployments 50] [--tick-rate 2000] [--seconds 10] [--bars 3] [--workers 2] [--concurrency 4]

Creates a throwaway database (test_<name>), one paper account per deployment (so the orders-per-second
governor, 10 a second per account, is not what is measured), instruments with quotes and stored 1-minute
bars. In the same run it measures:
- bar closes: --bar-deployments bar-driven deployments of a strategy that trades every bar (buy when
  flat, close when long: one order per deployment and bar), evaluated by --workers real Celery worker
  processes (threads pool, --concurrency threads each) on a queue and Redis key prefix of their own.
  For each of --bars consecutive bars the bench does what beat's dispatch does (find the bar closes
  due, send one evaluation task each) and times every task from that moment to its end: p50 and p99
  of this evaluation lag, and orders/s (the bar's orders over the time its last evaluation ended).
  The first bar also rebuilds every run by warm-up (the workers' caches are empty); the later ones
  show the steady state, as far as a worker receives the deployments it evaluated before.
- ticks: --tick-deployments tick-driven deployments run by one tick runner (``strategies.runner``,
  as ``run_strategies`` runs it: the fan-out channel read from Redis, leases, every held deployment's
  exits checked on each batch, the bar-driven deployments included), fed --tick-rate ticks a second
  for --seconds by a separate publisher process; the lag of each batch from its newest tick's time
  to the end of its handling, p50 and p99, and the batches and orders.
Targets (2 cores): bar closes p99 lag <= 1 s (the alert's threshold) at 200 deployments; ticks p99 lag
<= 250 ms at 50 deployments and 2,000 ticks/s. Results are printed as numbers and ratios against the
targets, not as verdicts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# A Monday in session: bars from 10:00 IST; the tick runner is told it is 10:30 IST on that day.
FIRST_BAR = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
MARKET_NOW = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
INSTRUMENTS = 50


def _register_strategies() -> None:
    from strategies.contract import Bar, Context, Params, Strategy, Tick
    from strategies.registry import register, registered

    class OneInstrument(Params):
        instrument_id: int

    class FlipEveryBar(Strategy):
        """Buys one when flat and closes when long: one order every bar."""

        name = "bench_flip_every_bar"
        Params = OneInstrument
        drive = "bar"

        def instruments(self, ctx: Context) -> list[int]:
            return [self.params.instrument_id]

        def on_bar(self, ctx: Context, bar: Bar) -> None:
            if ctx.position("long"):
                ctx.close("long", reason="flip")
            else:
                ctx.buy("long", bar.instrument_id, 1, reason="flip")

    class Breakout(Strategy):
        """Tick-driven: buys one on a 0.2% rise from its reference price, closes on a 0.2% fall."""

        name = "bench_tick_breakout"
        Params = OneInstrument
        drive = "tick"

        def instruments(self, ctx: Context) -> list[int]:
            return [self.params.instrument_id]

        def on_tick(self, ctx: Context, tick: Tick) -> None:
            reference = Decimal(ctx.state.setdefault("reference", str(tick.ltp)))
            if not ctx.position("long") and tick.ltp > reference * Decimal("1.002"):
                ctx.buy("long", tick.instrument_id, 1)
                ctx.state["reference"] = str(tick.ltp)
            elif ctx.position("long") and tick.ltp < reference * Decimal("0.998"):
                ctx.close("long")
                ctx.state["reference"] = str(tick.ltp)

    for cls in (FlipEveryBar, Breakout):
        if cls.name not in registered():
            register(cls)


# --- the worker processes ----------------------------------------------------------------------------
def _serve_worker(queue: str, prefix: str, concurrency: int) -> None:
    """A Celery worker of the project's app on ``queue`` with Redis keys under ``prefix``; each task's end
    time is pushed to the Redis list ``<prefix>done``."""
    import django

    django.setup()
    _register_strategies()
    import redis
    from celery.signals import task_postrun
    from django.conf import settings

    from config.celery import app

    app.conf.broker_transport_options = {"visibility_timeout": 3600, "global_keyprefix": prefix}
    client = redis.Redis.from_url(settings.REDIS_URL)

    @task_postrun.connect(weak=False)
    def _done(task_id=None, task=None, args=None, retval=None, **_):
        client.rpush(f"{prefix}done", json.dumps({"deployment": args[0], "at": time.time(), "result": retval}))

    options = ["--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    app.worker_main(["worker", "--pool", "threads", "--concurrency", str(concurrency), "--queues", queue, *options])


def _publish_ticks(redis_url: str, channel: str, instrument_ids: list[int], rate: int, seconds: float, start_at: float):
    """Publish ``rate`` ticks a second (a random walk per instrument) as the feed does, every 50 ms: the
    quotes stored (the paper exchange fills at them), then the batch on the fan-out channel."""
    import random

    import django
    import redis

    django.setup()
    from marketdata.quotes import Quote, set_quotes
    from marketdata.tick_channel import encode_batch

    client = redis.Redis.from_url(redis_url)
    prices = {i: Decimal(1000) for i in instrument_ids}
    per_batch = max(1, rate // 20)
    time.sleep(max(0.0, start_at - time.time()))
    due = time.monotonic()
    end = due + seconds
    count = 0
    while time.monotonic() < end:
        now = datetime.now(UTC)
        batch = []
        for _ in range(per_batch):
            instrument = random.choice(instrument_ids)  # nosec B311: a price walk, not a secret
            prices[instrument] = (prices[instrument] * Decimal(1 + random.gauss(0, 0.001))).quantize(Decimal("0.05"))  # nosec B311
            batch.append(Quote(instrument_id=instrument, ltp=prices[instrument], ts=now))
        set_quotes(batch)
        client.publish(channel, encode_batch(batch))
        count += len(batch)
        due += 0.05
        time.sleep(max(0.0, due - time.monotonic()))
    print(f"published {count} ticks in {seconds:.0f} s", file=sys.stderr)


# --- the bench (Django) -------------------------------------------------------------------------------
def _world(
    bar_deployments: int, tick_deployments: int, tick_kind: str = "bench_tick_breakout"
) -> tuple[list[int], list[int], list[int]]:
    """Instruments with quotes and an hour of 1-minute bars, and the running deployments, each on its own
    paper account (the tick-driven ones of the registered strategy ``tick_kind``); returns (instrument
    ids, bar deployment ids, tick deployment ids)."""
    from datetime import time as clock

    from accounts.models import Organisation, User
    from brokers.models import BrokerAccount
    from marketdata.candles import Bar as StoredBar
    from marketdata.models import Instrument
    from marketdata.quotes import Quote, set_quotes
    from marketdata.services import candle_upsert_many
    from strategies.models import Deployment, DeploymentAccount, StrategyDefinition

    org = Organisation.objects.create(name="Bench", slug="bench")
    user = User.objects.create_user("bench")
    instruments = [
        Instrument.objects.create(
            exchange="NSE",
            segment="NSE",
            tradingsymbol=f"BENCH{n}",
            exchange_token=str(900000 + n),
            instrument_type="EQ",
            lot_size=1,
            tick_size=Decimal("0.05"),
        )
        for n in range(INSTRUMENTS)
    ]
    price = Decimal(1000)
    set_quotes(
        [
            Quote(instrument_id=i.pk, ltp=price, bid=price - Decimal("0.05"), ask=price, ts=datetime.now(UTC))
            for i in instruments
        ]
    )
    start = FIRST_BAR - timedelta(minutes=60)
    candle_upsert_many(
        bars=[
            StoredBar(i.pk, start + timedelta(minutes=m), price, price, price, price, 100, 0)
            for i in instruments
            for m in range(60 + 10)
        ]
    )
    ids: dict[str, list[int]] = {"bar": [], "tick": []}
    for drive, kind, count in (
        ("bar", "bench_flip_every_bar", bar_deployments),
        ("tick", tick_kind, tick_deployments),
    ):
        for n in range(count):
            instrument = instruments[n % INSTRUMENTS]
            params = {"instrument_id": instrument.pk}
            definition = StrategyDefinition.objects.create(
                organisation=org, name=f"{drive} {n}", kind=kind, params=params, created_by=user
            )
            deployment = Deployment.objects.create(
                organisation=org,
                definition=definition,
                name=f"{drive} {n}",
                kind=kind,
                params=params,
                mode=Deployment.Mode.PAPER,
                status=Deployment.Status.RUNNING,
                start_time=clock(9, 15),
                end_time=clock(15, 30),
                square_off_time=None,
                started_at=start,
                created_by=user,
            )
            account = BrokerAccount.objects.create(
                organisation=org, label=f"{drive} {n}", broker="paper", client_code=f"B{drive[0].upper()}{n}"
            )
            DeploymentAccount.objects.create(deployment=deployment, account=account, multiplier=1)
            ids[drive].append(deployment.pk)
    return [i.pk for i in instruments], ids["bar"], ids["tick"]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def _bench_bar_closes(args, database: str, bar_ids: list[int]) -> None:
    import redis
    from django.conf import settings

    from orders.models import Order
    from strategies import runtime, tasks

    run_id = uuid.uuid4().hex[:10]
    queue, prefix = f"strategies-bench-{run_id}", f"bench-{run_id}:"
    env = {**os.environ, "DATABASE_URL": _database_url(database), "METRICS_PORT": "0"}
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve-worker", queue, prefix, str(args.concurrency)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=None if args.verbose else subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    client = redis.Redis.from_url(settings.REDIS_URL)
    from config.celery import app

    app.conf.broker_transport_options = {"visibility_timeout": 3600, "global_keyprefix": prefix}
    try:
        time.sleep(3 if args.bar_deployments < 50 else 8)  # the workers start (Django, the app, the queue)
        print(
            f"bar closes: {len(bar_ids)} deployments, {args.workers} worker processes x {args.concurrency} threads, "
            f"queue {queue}"
        )
        for n in range(args.bars):
            bar_ts = FIRST_BAR + timedelta(minutes=n)
            close = bar_ts + timedelta(minutes=1)
            orders_before = Order.objects.count()
            started = time.time()
            due = runtime.due_bar_closes(now=close)  # what beat's dispatch does
            for deployment_id, due_bar in due:
                tasks.evaluate_deployment.apply_async((deployment_id, due_bar.isoformat()), queue=queue)
            ends: list[float] = []
            deadline = time.monotonic() + 120
            while len(ends) < len(due) and time.monotonic() < deadline:
                item = client.blpop(f"{prefix}done", timeout=1)
                if item is not None:
                    ends.append(json.loads(item[1])["at"])
            if len(ends) < len(due):
                print(f"  bar {n + 1}: only {len(ends)} of {len(due)} evaluations ended within 120 s")
                continue
            lags = [end - started for end in ends]
            orders = Order.objects.count() - orders_before
            span = max(lags)
            p50, p99 = statistics.median(lags), _percentile(lags, 0.99)
            print(
                f"  bar {n + 1}{' (runs rebuilt by warm-up)' if n == 0 else ''}: evaluation lag p50 "
                f"{p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  (p99 / target 1 s: {p99:.2f}); "
                f"{orders} orders in {span:.2f} s: {orders / span:.1f} orders/s"
            )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def _bench_ticks(args, instrument_ids: list[int], tick_ids: list[int]) -> None:
    from django.conf import settings
    from django.db import close_old_connections

    from marketdata.tick_channel import ticks_channel
    from orders.models import Order
    from strategies.runner import TickRunner, listen_redis

    lags: list[float] = []

    class MeasuredRunner(TickRunner):
        def handle(self, quotes, *, now=None):
            super().handle(quotes, now=MARKET_NOW)  # inside the deployments' schedule, whatever today is
            if quotes:
                lags.append((datetime.now(UTC) - max(q.ts for q in quotes)).total_seconds())

    runner = MeasuredRunner(owner="bench")
    runner.refresh()
    held = len(runner.held)
    stopping = threading.Event()
    reader = threading.Thread(target=listen_redis, args=(runner, stopping), daemon=True)
    loop = threading.Thread(target=runner.run, args=(stopping,), daemon=True)
    reader.start()
    loop.start()
    tick_instruments = sorted({instrument_ids[n % INSTRUMENTS] for n in range(len(tick_ids))})
    orders_before = Order.objects.count()
    ctx = multiprocessing.get_context("spawn")
    publisher = ctx.Process(
        target=_publish_ticks,
        args=(settings.REDIS_URL, ticks_channel(), tick_instruments, args.tick_rate, args.seconds, time.time() + 1),
    )
    publisher.start()
    publisher.join()
    time.sleep(1)  # the last batches are handled
    stopping.set()
    loop.join(30)
    reader.join(10)
    close_old_connections()
    if not lags:
        print("ticks: no batch was handled")
        return
    p50, p99 = statistics.median(lags), _percentile(lags, 0.99)
    print(
        f"ticks: {len(tick_ids)} tick-driven deployments, one runner holding {held} deployments (the bar-driven "
        f"ones too: exits checked for all on each batch), {args.tick_rate} ticks/s for {args.seconds:.0f} s"
    )
    print(
        f"  batch lag from its newest tick p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
        f"(p99 / target 250 ms: {p99 / 0.25:.2f}); {len(lags)} batches handled, "
        f"{Order.objects.count() - orders_before} orders"
    )


def _database_url(database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path=f"/{database}"))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-worker":
        _serve_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bar-deployments", type=int, default=200)
    parser.add_argument("--tick-deployments", type=int, default=50)
    parser.add_argument("--tick-rate", type=int, default=2000, help="ticks a second fed to the tick runner")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the ticks are fed")
    parser.add_argument("--bars", type=int, default=3, help="consecutive bar closes measured")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker process")
    parser.add_argument("--verbose", action="store_true", help="show the workers' log")
    args = parser.parse_args()

    import django

    django.setup()
    _register_strategies()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        sys.exit("bench/strategies.py needs DATABASE_URL (PostgreSQL) and REDIS_URL: its workers are processes.")
    original = connection.settings_dict["NAME"]
    # Its own throwaway database, never a test run's test_<name>.
    connection.settings_dict["TEST"]["NAME"] = f"test_{original}_strategies_bench"
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from rms import limits

        settings.RMS_DEFAULT_OPS_LIMIT = 100_000
        limits.invalidate()
        instrument_ids, bar_ids, tick_ids = _world(args.bar_deployments, args.tick_deployments)
        print(f"{os.cpu_count()} cores, database {test_name}")
        _bench_bar_closes(args, test_name, bar_ids)
        _bench_ticks(args, instrument_ids, tick_ids)
    finally:
        connection.close()
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
