"""Strategy tasks (queue "strategies"): each minute, the bar closes due; one evaluation per deployment and bar;
backtests (``run_backtest``: one alone, or each run of a sweep, which then updates the sweep's status).

Beat sends ``dispatch_bar_closes`` every minute, ``runtime.SETTLE_SECONDS`` after the minute turns (so
the feed has stored the bar that closed); it sends one ``evaluate_deployment`` per running, bar-driven
deployment inside its schedule whose timeframe closes a bar then. Evaluations are idempotent
(``strategies.runtime``), so they are acknowledged late: a worker killed mid-task has it redelivered,
and the repeat places nothing twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task

from strategies import runtime
from strategies.errors import BacktestNotQueued
from strategies.models import BacktestRun
from strategies.services import backtest_run, sweeps
from strategies.services.backtests import BACKTEST_TIME_LIMIT

logger = logging.getLogger(__name__)

EVALUATION_EXPIRES = 55  # seconds after the bar close: a bar older than its successor is not traded on


def _now() -> datetime:
    return datetime.now(UTC)


@shared_task(acks_late=True, time_limit=30, soft_time_limit=25)
def dispatch_bar_closes() -> int:
    """Queue the evaluations of the bar that closed at the start of this minute; return how many."""
    now = _now()
    close = (now - timedelta(seconds=runtime.SETTLE_SECONDS)).replace(second=0, microsecond=0)
    due = runtime.due_bar_closes(now=close)
    for deployment_id, bar_ts in due:
        evaluate_deployment.apply_async(
            (deployment_id, bar_ts.isoformat()),
            expires=close + timedelta(seconds=EVALUATION_EXPIRES),
        )
    return len(due)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=50, soft_time_limit=40)
def evaluate_deployment(deployment_id: int, bar_ts: str) -> str:
    """Evaluate one deployment at the close of the bar opening at ``bar_ts`` (ISO 8601); return what it did
    (``evaluated``, ``skipped:<reason>``, ``crashed``). A strategy that raises pauses its deployment here;
    any other error is logged and raised for Celery's accounting, the deployment left as it was."""
    outcome = runtime.evaluate_bar(deployment_id=int(deployment_id), bar_ts=datetime.fromisoformat(bar_ts))
    return f"{outcome.status}:{outcome.reason}" if outcome.reason and outcome.status == "skipped" else outcome.status


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=BACKTEST_TIME_LIMIT,
    soft_time_limit=BACKTEST_TIME_LIMIT - 20,
)
def run_backtest(backtest_id: int) -> str:
    """Execute the queued backtest ``backtest_id`` (``services.backtest_run``) and, for a sweep's run, set
    the sweep's status from its runs; return the run's status, or ``skipped`` when it is not queued
    (already run, or still running); a run left running by a worker lost mid-run runs again when
    redelivered past the time limit."""
    run = BacktestRun.objects.filter(pk=int(backtest_id)).first()
    if run is None:
        return "skipped"
    if run.sweep_id is not None:
        sweeps.sweep_refresh(sweep_id=run.sweep_id)
    try:
        return backtest_run(run=run).status
    except BacktestNotQueued:
        return "skipped"
    finally:
        if run.sweep_id is not None:
            sweeps.sweep_refresh(sweep_id=run.sweep_id)
