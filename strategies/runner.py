"""The tick runner (``manage.py run_strategies``): tick-driven deployments' ``on_tick`` and every running
deployment's strategy-level exits, on each batch of ticks.

Ticks arrive from the feed's fan-out channel (Redis pub/sub, ``marketdata.tick_channel``) in the full
stack, or as a tick listener of the feed in the same process in standalone mode. A reader hands each
batch to the runner's thread through a conflating inbox (the newest tick per instrument), so a slow
evaluation is followed by the latest prices, never a backlog.

Several runners share the deployments, none running one twice: a runner holds a lease per deployment
(``Leases``: a Redis key set NX with a time to live, renewed every ``refresh_seconds``; in standalone
mode, one dict in the process) and runs only the deployments it holds. A runner that dies stops
renewing, and another takes its deployments over once the lease lapses.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections, connection

from marketdata.quotes import Quote
from strategies import exits, metrics, runtime
from strategies.contract import Tick
from strategies.inputs import new_fills
from strategies.models import Deployment

logger = logging.getLogger(__name__)

LEASE_PREFIX = "strategies:lease:"
MARKS_PER_BATCH = 10
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Leases:
    """Leases on deployments for one owner: Redis ``SET key owner NX PX ttl`` (full stack) or a dict shared
    by the runners of this process (standalone)."""

    _memory: dict[int, tuple[str, float]] = {}
    _memory_lock = threading.Lock()

    def __init__(self, *, owner: str, ttl_seconds: float) -> None:
        self.owner = owner
        self.ttl_ms = int(ttl_seconds * 1000)
        self._redis = None
        if settings.REDIS_URL:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
            self._renew = self._redis.register_script(_RENEW)
            self._release = self._redis.register_script(_RELEASE)

    def acquire(self, ids: Iterable[int]) -> set[int]:
        """Take the free leases among ``ids``; return those now held by this owner."""
        got = set()
        for deployment_id in ids:
            if self._redis is not None:
                if self._redis.set(f"{LEASE_PREFIX}{deployment_id}", self.owner, nx=True, px=self.ttl_ms):
                    got.add(deployment_id)
                continue
            with self._memory_lock:
                holder = self._memory.get(deployment_id)
                if holder is None or holder[1] < time.monotonic() or holder[0] == self.owner:
                    self._memory[deployment_id] = (self.owner, time.monotonic() + self.ttl_ms / 1000)
                    got.add(deployment_id)
        return got

    def renew(self, ids: Iterable[int]) -> set[int]:
        """Extend the leases among ``ids`` this owner still holds; return them."""
        kept = set()
        for deployment_id in ids:
            if self._redis is not None:
                if self._renew(keys=[f"{LEASE_PREFIX}{deployment_id}"], args=[self.owner, self.ttl_ms]):
                    kept.add(deployment_id)
                continue
            with self._memory_lock:
                holder = self._memory.get(deployment_id)
                if holder is not None and holder[0] == self.owner and holder[1] >= time.monotonic():
                    self._memory[deployment_id] = (self.owner, time.monotonic() + self.ttl_ms / 1000)
                    kept.add(deployment_id)
        return kept

    def release(self, ids: Iterable[int]) -> None:
        for deployment_id in ids:
            if self._redis is not None:
                self._release(keys=[f"{LEASE_PREFIX}{deployment_id}"], args=[self.owner])
                continue
            with self._memory_lock:
                holder = self._memory.get(deployment_id)
                if holder is not None and holder[0] == self.owner:
                    del self._memory[deployment_id]


class TickRunner:
    """Runs the deployments it holds leases on against each batch of ticks (``handle``)."""

    def __init__(self, *, owner: str | None = None, lease_seconds: float = 10.0, refresh_seconds: float = 1.0) -> None:
        self.owner = owner or f"runner-{uuid.uuid4().hex[:12]}"
        self.leases = Leases(owner=self.owner, ttl_seconds=lease_seconds)
        self.refresh_seconds = refresh_seconds
        self.held: set[int] = set()
        self.deployments: dict[int, Deployment] = {}
        self._refreshed = self._renewed = 0.0
        self._inbox: dict[int, Quote] = {}
        self._inbox_lock = threading.Lock()
        self._wake = threading.Event()
        self.batches = 0

    # --- leases

    def refresh(self) -> None:
        """Re-read the running deployments, renew the leases held on them, release the rest and take the
        free ones."""
        running = {d.pk: d for d in Deployment.objects.filter(status=Deployment.Status.RUNNING).order_by("pk")}
        kept = self.leases.renew(self.held & running.keys())
        lost = (self.held & running.keys()) - kept
        if lost:
            metrics.LEASES.inc(len(lost))
            logger.warning("runner %s lost the leases of deployments %s", self.owner, sorted(lost))
        self.leases.release(self.held - running.keys())
        held = kept | self.leases.acquire(running.keys() - kept)
        for gone in self.held - held:
            runtime.runs.forget(gone)
        self.held = held
        self.deployments = {pk: running[pk] for pk in sorted(held)}
        self._refreshed = self._renewed = time.monotonic()

    def renew(self) -> None:
        """Extend the leases held, in the middle of a long batch; a lease lost meanwhile (this runner
        stalled past its lifetime and another took the deployment) stops this runner running it."""
        kept = self.leases.renew(self.held)
        lost = self.held - kept
        if lost:
            metrics.LEASES.inc(len(lost))
            logger.warning("runner %s lost the leases of deployments %s", self.owner, sorted(lost))
            for gone in lost:
                runtime.runs.forget(gone)
                self.deployments.pop(gone, None)
        self.held = kept
        self._renewed = time.monotonic()

    def close(self) -> None:
        """Give every lease up (a runner stopping cleanly hands its deployments over at once)."""
        self.leases.release(self.held)
        self.held, self.deployments = set(), {}

    # --- ticks

    def offer(self, quotes: list[Quote], passed: Mapping | None = None) -> None:
        """Hand a batch over (from the reader or the feed's listener thread); never blocks on evaluation."""
        with self._inbox_lock:
            for quote in quotes:
                self._inbox[quote.instrument_id] = quote
        self._wake.set()

    def take(self, timeout: float) -> list[Quote]:
        """The quotes handed over since the last take (waiting up to ``timeout`` for one)."""
        self._wake.wait(timeout)
        with self._inbox_lock:
            batch, self._inbox = list(self._inbox.values()), {}
            self._wake.clear()
        return batch

    def handle(self, quotes: list[Quote], *, now: datetime | None = None) -> None:
        """One batch (possibly empty: the idle check): tick-driven deployments in schedule run ``on_tick``;
        every deployment held has its exits checked. A deployment that fails is logged and skipped."""
        if time.monotonic() - self._refreshed >= self.refresh_seconds:
            self.refresh()
        now = now or datetime.now(UTC)
        ticks = [Tick(instrument_id=q.instrument_id, ts=q.ts, ltp=q.ltp, volume=q.volume) for q in quotes]
        ticking = {d.pk for d in self.deployments.values() if ticks and self._ticking(d, now)}
        fills = self._fills([self.deployments[pk] for pk in ticking])
        marks = MARKS_PER_BATCH  # P&L reads for the equity marks alone, spread over the minute's batches
        for deployment in list(self.deployments.values()):
            if time.monotonic() - self._renewed >= self.refresh_seconds:
                self.renew()  # a batch slower than a lease must not let another runner in meanwhile
            if deployment.pk not in self.held:
                continue
            try:
                if deployment.pk in ticking:
                    outcome = runtime.evaluate_ticks(deployment=deployment, ticks=ticks, fills=fills.get(deployment.pk))
                    if outcome.status == "crashed":
                        self.deployments.pop(deployment.pk, None)
                        continue
                may_mark = marks > 0 and exits.marks.due(deployment.pk, now)
                marks -= may_mark
                if exits.check_exits(deployment=deployment, now=now, may_mark=may_mark):
                    self.deployments.pop(deployment.pk, None)
            except Exception:
                metrics.ERRORS.labels(str(deployment.pk)).inc()
                logger.exception("deployment %s: tick handling failed", deployment.pk)
        self.batches += 1
        if ticks:
            newest = max(tick.ts for tick in ticks)
            metrics.TICK_LAG.observe(max((datetime.now(UTC) - newest).total_seconds(), 0.0))

    @staticmethod
    def _ticking(deployment: Deployment, now: datetime) -> bool:
        try:
            return runtime.shape(deployment)[0] == "tick" and runtime.in_schedule(deployment, now)
        except Exception:  # its strategy cannot be built: evaluate_ticks reports it
            return True

    @staticmethod
    def _fills(deployments: list[Deployment]) -> dict:
        """The new fills of the tick-driven deployments whose runs are cached, in one query."""
        cached = {d.pk: runtime.runs.peek(d.pk) for d in deployments}
        known = {pk: entry for pk, entry in cached.items() if entry is not None and entry.account is not None}
        if not known:
            return {}
        after = {pk: entry.fills_after for pk, entry in known.items()}
        fills = new_fills(
            deployments=[d for d in deployments if d.pk in known],
            after=after,
            accounts={pk: entry.account for pk, entry in known.items() if entry.account is not None},
        )
        return {pk: (after[pk], found) for pk, found in fills.items()}

    def run(self, stopping: threading.Event, *, idle_seconds: float = 1.0) -> None:
        """Handle batches until ``stopping`` is set, then give the leases up."""
        try:
            while not stopping.is_set():
                batch = self.take(idle_seconds)
                if stopping.is_set():
                    break
                close_old_connections()
                try:
                    self.handle(batch)
                except Exception:  # the database or Redis away: try again on the next batch
                    logger.exception("runner %s: a batch failed", self.owner)
                    time.sleep(0.5)
        finally:
            try:
                self.close()
            except Exception:
                logger.warning("runner %s: releasing its leases failed", self.owner, exc_info=True)
            connection.close()  # this thread's


def listen_redis(runner: TickRunner, stopping: threading.Event) -> None:
    """Read the fan-out channel into ``runner`` until ``stopping`` is set (reconnecting after a loss)."""
    import redis

    from marketdata.tick_channel import decode_batch, decode_row, ticks_channel

    url = settings.REDIS_URL
    if not url:
        raise ValueError("the tick channel is in Redis: REDIS_URL is not set")
    channel = ticks_channel()
    while not stopping.is_set():
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(channel)
            while not stopping.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    runner.offer([decode_row(row) for row in decode_batch(message["data"])])
                except (ValueError, KeyError, TypeError, ArithmeticError):
                    logger.warning("ignored a malformed tick batch on %s", channel)
            pubsub.close()
        except redis.RedisError:
            logger.warning("the tick channel's Redis is away; retrying in 1 s", exc_info=True)
            stopping.wait(1.0)
        finally:
            client.close()


def start_runner_in_process() -> tuple[TickRunner, threading.Event]:
    """Standalone mode: a runner fed by the feed in this process (a tick listener), on a thread of its own."""
    from marketdata.listeners import register_tick_listener

    runner = TickRunner()
    stopping = threading.Event()
    register_tick_listener("strategies", runner.offer)
    threading.Thread(target=runner.run, args=(stopping,), name="strategy-runner", daemon=True).start()
    return runner, stopping
