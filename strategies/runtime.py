"""Running a deployment's strategy in a worker: one bar close (Celery) or one tick batch (``run_strategies``).

Each process keeps its deployments' ``StrategyRun``s in memory (``RunCache``), keyed by deployment and
version (the strategy kind, its parameters and the time it was started), so a deployment advances bar by
bar without reading its history again. A run that is missing, of another version, or that did not see
the previous bar (another worker evaluated it, or a bar was skipped) is rebuilt: the persisted snapshot
(the strategy's ``ctx.state`` and positions per leg) plus ``warm_up`` over the stored 1-minute bars
before this one, which rebuilds the indicators without emitting anything.

An evaluation is idempotent, so a task redelivered after its worker died places nothing twice:

1. a deployment not running, or whose ``last_bar_ts`` is already this bar or later, is skipped;
2. the fills of its orders since the last evaluation go to ``on_fill`` (see "Fills" below), then the
   bar of each of its instruments to ``on_bar``;
3. the intents go to ``deployment_apply``, which keys each order ``dep<id>:<account>:<intent key>``; the
   engine's keys are deterministic, so evaluating the same bar again yields the same keys and the
   orders' unique idempotency keys refuse the second copy;
4. only then the snapshot, the fill cursor and ``last_bar_ts`` are written, by a conditional update
   (``last_bar_ts`` still before this bar), so of two workers racing on one bar one writes.

A strategy that raises pauses its deployment, its traceback in the deployment's log (an ``error``
event), as does one that can no longer be built (its kind unregistered, its parameters or snapshot
invalid); the worker goes on.

Fills: a fill reaches the strategy at the deployment's next event (its next bar close, or the next tick
batch for a tick-driven one), read from the order system's trades by a cursor kept with the snapshot,
before that event's handler. Not from a hook in the order system called after each commit: that would
run ``on_fill`` in whatever process applied the broker update (a web request, the feed's matching
thread, the placing task itself), concurrently with the deployment's own evaluation, and a fill whose
hook was lost with a crashed process would be lost for good. Read by cursor, the strategy's state has
one writer at a time, a fill is delivered exactly once per snapshot, and no layer below imports or
calls up. How the fills, the bars and the symbol master are read: ``strategies.inputs``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q

from strategies import metrics
from strategies.contract import Fill, Intent, Tick
from strategies.engine import StrategyRun, bucket_start, closes_bar
from strategies.errors import StrategyError
from strategies.inputs import SymbolMaster, bars_at, bars_before, new_fills, reference_accounts
from strategies.models import Deployment, DeploymentEvent
from strategies.selectors import deployment_in_schedule
from strategies.services.deployments import deployment_pause, log_event
from strategies.services.execution import deployment_apply

logger = logging.getLogger(__name__)

# The feed stores the bars it built every few seconds (marketdata.feeds.publisher, candle_flush_seconds
# 5 s): a bar close is evaluated this long after the minute closes, when its last 1-minute bar is stored.
SETTLE_SECONDS = 6.0
WARM_UP_BARS = 200  # bars of the strategy's timeframe replayed to rebuild its indicators
PERSIST_SECONDS = 5.0  # a tick-driven run's state is written at least this often while it runs


# --- Schedule ------------------------------------------------------------------------------------


def bar_closing(*, timeframe: int, now: datetime) -> datetime | None:
    """The opening time of the ``timeframe``-minute bar that closed at the start of the minute ``now``
    falls in, or None when no bar of that timeframe closes then. Bars are the engine's: aligned to the
    09:15 IST open, the session's last bar closing at 15:30 (``strategies.engine.closes_bar``)."""
    last_minute = now.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    if not closes_bar(last_minute, timeframe):
        return None
    return bucket_start(last_minute, timeframe)


def in_schedule(deployment: Deployment, at: datetime) -> bool:
    """Whether ``at`` is inside the deployment's schedule (``selectors.deployment_in_schedule``: a market
    day, from its start time to its end time, IST); a bar is in it when its close is."""
    return deployment_in_schedule(deployment=deployment, at=at)


_SHAPES: dict[tuple[str, str], tuple[str, int]] = {}


def _params_digest(params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shape(deployment: Deployment) -> tuple[str, int]:
    """(drive, timeframe) of the deployment's strategy: ``"bar"`` or ``"tick"`` and its bar minutes.
    Memoised per kind and parameters (a rule strategy's timeframe is one of its parameters)."""
    key = (deployment.kind, _params_digest(deployment.params))
    if key not in _SHAPES:
        run = _new_run(deployment, snapshot=None)
        _SHAPES[key] = (run.drive, int(run.timeframe))
    return _SHAPES[key]


def due_bar_closes(*, now: datetime) -> list[tuple[int, datetime]]:
    """(deployment id, bar opening time) for each running, bar-driven deployment inside its schedule whose
    timeframe closes a bar at the minute ``now`` falls in. A deployment whose strategy cannot be built is
    due at once: its evaluation pauses it with the error in its log."""
    due = []
    close = now.astimezone(UTC).replace(second=0, microsecond=0)
    for deployment in Deployment.objects.filter(status=Deployment.Status.RUNNING).order_by("pk"):
        if not in_schedule(deployment, close):
            continue
        try:
            drive, timeframe = shape(deployment)
        except StrategyError:
            # Its kind is no longer registered or its parameters no longer validate: evaluating it pauses
            # it with the error in its log, rather than skipping it every minute unnoticed.
            due.append((deployment.pk, close - timedelta(minutes=1)))
            continue
        if drive != "bar":
            continue
        bar_ts = bar_closing(timeframe=timeframe, now=close)
        if bar_ts is not None:
            due.append((deployment.pk, bar_ts))
    return due


# --- The runs ------------------------------------------------------------------------------------------


def _new_run(deployment: Deployment, *, snapshot: dict | None) -> StrategyRun:
    return StrategyRun(kind=deployment.kind, params=deployment.params, snapshot=snapshot, instruments=SymbolMaster())


def version_of(deployment: Deployment) -> str:
    """What makes a cached run stale: another kind, other parameters, or a restart."""
    started = deployment.started_at.isoformat() if deployment.started_at else ""
    return f"{deployment.kind}:{_params_digest(deployment.params)}:{started}"


@dataclass
class Cached:
    version: str
    run: StrategyRun
    last_bar_ts: datetime | None
    fills_after: int
    account: tuple[int, int] | None  # the reference account (id, multiplier), if it has one
    persisted_at: float = 0.0


@dataclass
class Outcome:
    """What one evaluation did: ``status`` evaluated, skipped or crashed; ``reason`` why it skipped."""

    status: str
    reason: str = ""
    intents: int = 0
    applied: list = field(default_factory=list)


class RunCache:
    """This process's StrategyRuns by deployment id, one evaluation of a deployment at a time."""

    def __init__(self) -> None:
        self._runs: dict[int, Cached] = {}
        self._locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()
        self.rebuilds = 0

    def lock(self, deployment_id: int) -> threading.Lock:
        with self._guard:
            return self._locks[deployment_id]

    def peek(self, deployment_id: int) -> Cached | None:
        """The cached run, if any, as it is (for reading its fill cursor and account)."""
        return self._runs.get(deployment_id)

    def forget(self, deployment_id: int) -> None:
        self._runs.pop(deployment_id, None)

    def clear(self) -> None:
        self._runs.clear()

    def get(self, deployment: Deployment, *, before: datetime | None, previous_bar: datetime | None = None) -> Cached:
        """The deployment's run as persisted, advanced to just before ``before`` (a bar or tick time).

        Reused when its version matches and it last saw the persisted ``last_bar_ts``, which must be
        ``previous_bar`` when given (the bar just before this one); otherwise rebuilt from the snapshot
        and a warm-up over the stored bars before ``before``."""
        cached = self._runs.get(deployment.pk)
        version = version_of(deployment)
        if (
            cached is not None
            and cached.version == version
            and cached.last_bar_ts == deployment.last_bar_ts
            and (previous_bar is None or cached.last_bar_ts == previous_bar)
        ):
            return cached
        stored = deployment.state or {}
        snapshot = stored.get("snapshot")
        run = _new_run(deployment, snapshot=snapshot)
        if before is not None:
            instruments = set(run.subscriptions(before))
            history = bars_before(
                instrument_ids=instruments,
                before=before,
                timeframe=int(run.timeframe),
                count=WARM_UP_BARS,
            )
            if history:
                run.warm_up(history)
        cached = Cached(
            version=version,
            run=run,
            last_bar_ts=deployment.last_bar_ts,
            fills_after=int(stored.get("fills_after", 0)),
            account=reference_accounts([deployment.pk]).get(deployment.pk),
        )
        self._runs[deployment.pk] = cached
        self.rebuilds += 1
        return cached


runs = RunCache()


def _crashed(deployment: Deployment, error: StrategyError) -> None:
    """Pause the deployment for a strategy that raised (``StrategyCrashed``) or cannot be built (an unknown
    kind, parameters or a snapshot that no longer validate), the traceback or error in its log."""
    metrics.ERRORS.labels(str(deployment.pk)).inc()
    event = getattr(error, "event", "")
    # A crash's own message reads "The strategy crashed on <event>: <the exception>".
    message = error.message if event else f"the strategy cannot run: {error.code}: {error.message}"
    trace = getattr(error, "traceback", "")
    log_event(deployment, DeploymentEvent.Kind.ERROR, message, event=str(event), traceback=str(trace)[-20000:])
    runs.forget(deployment.pk)
    try:
        deployment.refresh_from_db()
        if deployment.status == Deployment.Status.RUNNING:
            deployment_pause(actor=None, deployment=deployment, reason="the strategy failed: see the log")
    except Exception:
        logger.exception("deployment %s: pausing after a crash failed", deployment.pk)


def _state(run: Any, fills_after: int) -> dict:
    return {"snapshot": run.snapshot(), "fills_after": fills_after}


def _apply(deployment: Deployment, intents: list[Intent], source: str = "strategy") -> list:
    """Place the intents (``deployment_apply``) and count them. An error is counted, the cached run dropped
    (its state is not written, so the next event starts from the persisted one) and raised."""
    if not intents:
        return []
    metrics.INTENTS.labels(str(deployment.pk)).inc(len(intents))
    try:
        applied = list(deployment_apply(deployment=deployment, intents=intents, source=source))
    except Exception:
        metrics.ERRORS.labels(str(deployment.pk)).inc()
        runs.forget(deployment.pk)
        raise
    metrics.count_applied(deployment.pk, applied)
    return applied


Prefetched = tuple[int, list[tuple[int, Fill | None]]]  # (the cursor they were read after, the fills)


def _deliver_fills(
    deployment: Deployment, cached: Cached, prefetched: Prefetched | None = None
) -> tuple[list[Intent], list[str]]:
    """Tell the run of the deployment's fills since its cursor: those the caller read, when read after
    this run's own cursor (a run rebuilt meanwhile starts from its snapshot's), else read here."""
    intents: list[Intent] = []
    log: list[str] = []
    if prefetched is not None and prefetched[0] == cached.fills_after:
        fills = prefetched[1]
    elif cached.account is None:
        return intents, log
    else:
        after, accounts = {deployment.pk: cached.fills_after}, {deployment.pk: cached.account}
        fills = new_fills(deployments=[deployment], after=after, accounts=accounts)[deployment.pk]
    for trade_id, fill in fills:
        if trade_id <= cached.fills_after:
            continue
        if fill is not None:
            step = cached.run.on_fill(fill)
            intents.extend(step.intents)
            log.extend(step.log)
            metrics.SIGNALS.labels(str(deployment.pk), "fill").inc()
        cached.fills_after = trade_id
    return intents, log


def evaluate_bar(*, deployment_id: int, bar_ts: datetime, now: datetime | None = None) -> Outcome:
    """Evaluate the deployment at the close of the bar opening at ``bar_ts``; see the module's docstring.

    Returns the Outcome; a strategy that raises is handled here (the deployment paused), never raised."""
    with runs.lock(deployment_id):
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        if deployment is None or deployment.status != Deployment.Status.RUNNING:
            return Outcome("skipped", "not_running")
        if deployment.last_bar_ts is not None and deployment.last_bar_ts >= bar_ts:
            return Outcome("skipped", "already_evaluated")
        try:
            timeframe = shape(deployment)[1]
            cached = runs.get(deployment, before=bar_ts, previous_bar=bar_ts - timedelta(minutes=timeframe))
            run = cached.run
            intents: list[Intent] = []
            log: list[str] = []
            close = bar_ts + timedelta(minutes=timeframe)
            step = run.start(close)  # once: a run restored from a started snapshot does nothing
            intents += step.intents
            log += step.log
            fill_intents, fill_log = _deliver_fills(deployment, cached)
            intents += fill_intents
            log += fill_log
            instruments = set(run.subscriptions(close))
            for bar in bars_at(instrument_ids=instruments, bar_ts=bar_ts, timeframe=timeframe):
                step = run.on_bar(bar)
                intents += step.intents
                log += step.log
                metrics.SIGNALS.labels(str(deployment_id), "bar").inc()
        except StrategyError as error:  # the strategy raised, or cannot be built from its kind and parameters
            _crashed(deployment, error)
            return Outcome("crashed", str(error))
        except Exception:
            runs.forget(deployment_id)
            metrics.ERRORS.labels(str(deployment_id)).inc()
            raise
        applied = _apply(deployment, intents)
        for line in log:
            log_event(deployment, DeploymentEvent.Kind.NOTE, line)
        written = (
            Deployment.objects.filter(pk=deployment_id)
            .filter(Q(last_bar_ts__isnull=True) | Q(last_bar_ts__lt=bar_ts))
            .update(state=_state(run, cached.fills_after), last_bar_ts=bar_ts)
        )
        if written:
            cached.last_bar_ts = bar_ts
        else:  # another worker wrote this bar (or a later one) first: its state is the one kept
            runs.forget(deployment_id)
        due = close + timedelta(seconds=SETTLE_SECONDS)
        metrics.EVALUATION_LAG.observe(max(((now or datetime.now(UTC)) - due).total_seconds(), 0.0))
        return Outcome("evaluated", intents=len(intents), applied=applied)


def evaluate_ticks(*, deployment: Deployment, ticks: Sequence[Tick], fills: Prefetched | None = None) -> Outcome:
    """Run a tick-driven deployment's ``on_tick`` for each of ``ticks`` of its instruments (after its new
    fills: ``fills`` when the caller read them for many deployments at once, with the cursor they were
    read after, else read here), place the
    intents and persist its state. The caller holds the deployment's lease, so this process is its one
    writer; intents of a deployment no longer running are refused by ``deployment_apply``."""
    with runs.lock(deployment.pk):
        try:
            first = min((tick.ts for tick in ticks), default=datetime.now(UTC))
            cached = runs.get(deployment, before=first)
            run = cached.run
            intents: list[Intent] = []
            log: list[str] = []
            step = run.start(first)
            intents += step.intents
            log += step.log
            fill_intents, fill_log = _deliver_fills(deployment, cached, fills)
            intents += fill_intents
            log += fill_log
            wanted = set(run.subscriptions(first))
            for tick in ticks:
                if tick.instrument_id in wanted:
                    step = run.on_tick(tick)
                    intents += step.intents
                    log += step.log
            metrics.SIGNALS.labels(str(deployment.pk), "ticks").inc()
        except StrategyError as error:  # the strategy raised, or cannot be built from its kind and parameters
            _crashed(deployment, error)
            return Outcome("crashed", str(error))
        except Exception:
            runs.forget(deployment.pk)
            metrics.ERRORS.labels(str(deployment.pk)).inc()
            raise
        applied = _apply(deployment, intents)
        for line in log:
            log_event(deployment, DeploymentEvent.Kind.NOTE, line)
        # The state is written when the strategy acted or was told of a fill, else every few seconds:
        # a runner that dies loses at most those seconds of ctx.state, rebuilt by the next one's warm-up.
        if intents or log or fill_intents or time.monotonic() - cached.persisted_at >= PERSIST_SECONDS:
            Deployment.objects.filter(pk=deployment.pk, status=Deployment.Status.RUNNING).update(
                state=_state(run, cached.fills_after)
            )
            cached.persisted_at = time.monotonic()
        return Outcome("evaluated", intents=len(intents), applied=applied)
