"""Strategy-level exits: the deployment's combined P&L across its legs and accounts against its MTM
stop-loss, target and trailing stop, and its square-off time; checked by ``run_strategies`` on every tick
batch (and each second while no tick arrives) for every running deployment it holds the lease of.

An exit squares off the deployment's own positions and stops it, through the emergency stop
(``strategies.services.deployments.deployment_emergency_stop``: its working orders cancelled, its own
net positions closed by market orders, the account's other positions untouched), then writes an
``exit`` event in the deployment's log and the audit event ``strategies.deployment_exit`` with the
reason and the P&L that triggered it. The square-off time counts on market days only
(``selectors.deployment_square_off_due``).

Thresholds are amounts in rupees on the combined P&L (realised + marked to market at the last quotes,
``strategies.selectors.deployment_pnl``): the stop-loss fires at a loss of ``mtm_stop_loss`` or more (its
sign is ignored), the target at a profit of ``mtm_target`` or more, the trailing stop once the P&L has
fallen ``trailing_stop`` below the highest it reached since the deployment started (``peak_pnl``, which
starts at zero, so before any profit it acts as a stop-loss of the same amount).

The P&L is also recorded as a ``DeploymentMark`` at most once a minute: the deployment's equity curve.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Q

from audit.services import audit_record
from strategies import metrics
from strategies.models import Deployment, DeploymentEvent, DeploymentMark
from strategies.selectors import deployment_pnl, deployment_square_off_due
from strategies.services.deployments import deployment_emergency_stop

logger = logging.getLogger(__name__)

ACTOR = "system:strategies"
ZERO = Decimal(0)


def exits_configured(deployment: Deployment) -> bool:
    return any(
        value is not None for value in (deployment.mtm_stop_loss, deployment.mtm_target, deployment.trailing_stop)
    )


def exit_reason(deployment: Deployment, *, pnl: Decimal | None, now: datetime) -> str | None:
    """Which exit ``pnl`` (None: not measured) and ``now`` trigger, the first of square_off_time,
    mtm_stop_loss, mtm_target, trailing_stop; None when none does. Reads ``deployment.peak_pnl`` as is."""
    if deployment_square_off_due(deployment=deployment, at=now):
        return "square_off_time"
    if pnl is None:
        return None
    if deployment.mtm_stop_loss is not None and pnl <= -abs(deployment.mtm_stop_loss):
        return "mtm_stop_loss"
    if deployment.mtm_target is not None and pnl >= deployment.mtm_target:
        return "mtm_target"
    if deployment.trailing_stop is not None:
        peak = max(deployment.peak_pnl or ZERO, ZERO)
        if pnl <= peak - abs(deployment.trailing_stop):
            return "trailing_stop"
    return None


class Marks:
    """Records each deployment's P&L at most once a minute (a per-process memo of the last minute
    written; the unique (deployment, ts) makes a second writer's row a no-op)."""

    def __init__(self) -> None:
        self._last: dict[int, datetime] = {}

    def due(self, deployment_id: int, now: datetime) -> bool:
        return self._last.get(deployment_id) != now.replace(second=0, microsecond=0)

    def record(self, deployment_id: int, now: datetime, pnl: Decimal) -> None:
        minute = now.astimezone(UTC).replace(second=0, microsecond=0)
        if self._last.get(deployment_id) == minute:
            return
        DeploymentMark.objects.bulk_create(
            [DeploymentMark(deployment_id=deployment_id, ts=minute, pnl=pnl)], ignore_conflicts=True
        )
        self._last[deployment_id] = minute


marks = Marks()


def _raise_peak(deployment: Deployment, pnl: Decimal) -> None:
    """Keep ``peak_pnl`` the highest P&L seen (a conditional update: it only ever rises)."""
    if pnl > max(deployment.peak_pnl or ZERO, ZERO):
        Deployment.objects.filter(pk=deployment.pk).filter(Q(peak_pnl__isnull=True) | Q(peak_pnl__lt=pnl)).update(
            peak_pnl=pnl
        )
        deployment.peak_pnl = pnl


def check_exits(*, deployment: Deployment, now: datetime | None = None, may_mark: bool = True) -> str | None:
    """Check the deployment's exits now; take the exit that fires and return its reason, else None.

    The P&L is read only when an exit on it is configured, or a mark is due and ``may_mark`` (a runner
    spreads the minute's marks over its batches)."""
    now = now or datetime.now(UTC)
    pnl: Decimal | None = None
    if exits_configured(deployment) or (may_mark and marks.due(deployment.pk, now)):
        pnl = deployment_pnl(deployment=deployment).total
        marks.record(deployment.pk, now, pnl)
        if deployment.trailing_stop is not None:
            _raise_peak(deployment, pnl)
    reason = exit_reason(deployment, pnl=pnl, now=now)
    if reason is not None:
        take_exit(deployment=deployment, reason=reason, pnl=pnl)
    return reason


def take_exit(*, deployment: Deployment, reason: str, pnl: Decimal | None) -> bool:
    """Square the deployment off and stop it for ``reason``; log and audit the exit. Returns False when
    the deployment was no longer running (someone else stopped it first: nothing is written)."""
    deployment.refresh_from_db()
    if deployment.status != Deployment.Status.RUNNING:
        return False
    text = f"exit: {reason.replace('_', ' ')}" + (f" at P&L {pnl}" if pnl is not None else "")
    deployment_emergency_stop(actor=None, deployment=deployment, reason=text)
    data = {
        "reason": reason,
        "pnl": None if pnl is None else str(pnl),
        "mtm_stop_loss": _text(deployment.mtm_stop_loss),
        "mtm_target": _text(deployment.mtm_target),
        "trailing_stop": _text(deployment.trailing_stop),
        "peak_pnl": _text(deployment.peak_pnl),
        "square_off_time": None if deployment.square_off_time is None else deployment.square_off_time.isoformat(),
    }
    DeploymentEvent.objects.create(deployment=deployment, kind=DeploymentEvent.Kind.EXIT, message=text, data=data)
    audit_record(actor=ACTOR, action="strategies.deployment_exit", target=deployment, payload=data)
    metrics.EXITS.labels(str(deployment.pk), reason).inc()
    logger.info("deployment %s: %s", deployment.pk, text)
    return True


def _text(value: object) -> str | None:
    return None if value is None else str(value)
