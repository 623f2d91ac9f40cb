"""Deployments: creating one over accounts with multipliers, and its lifecycle (start, pause, resume,
stop, emergency stop), each step a conditional update from the statuses it applies to, so two
concurrent calls cannot both make it; every step is audited (``strategy.deployment.<step>``) and
logged as a ``DeploymentEvent``.

Paper and live never mix: a paper deployment trades only paper accounts, a live one none, and a live
deployment starts only with an active algo id of its organisation.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from brokers.models import BrokerAccount
from brokers.selectors import account_get_for_user
from core.errors import ApplicationError
from orders.models import OrderType, Position, Side
from orders.services import OrderRequest, cancel_order, place_sliced_order
from orders.services.requests import GENERIC_ALGO_ID
from strategies.errors import (
    AlgoIdInvalid,
    DeploymentInvalid,
    DeploymentModeMismatch,
    DeploymentNeedsAlgoId,
    DeploymentStateConflict,
    StrategyForbidden,
)
from strategies.models import AlgoId, Deployment, DeploymentAccount, DeploymentEvent, StrategyDefinition
from strategies.registry import validate_params
from strategies.selectors import deployment_positions, deployment_working_orders
from strategies.services.access import WRITERS, clean_text, require_role

logger = logging.getLogger(__name__)

MAX_ACCOUNTS = 50  # accounts one deployment trades
MAX_MULTIPLIER = 1000
MAX_AMOUNT = Decimal(10) ** 14  # exclusive: what the limit columns (18 digits, 4 after the point) hold
MAX_COUNT = 2_147_483_647  # what the count columns hold
SYSTEM = "system:strategies"

Status = Deployment.Status


def log_event(deployment: Deployment, kind: str, message: str, /, **data: Any) -> DeploymentEvent:
    """Append a line to the deployment's log."""
    return DeploymentEvent.objects.create(deployment=deployment, kind=kind, message=message[:500], data=data)


def _actor_label(actor) -> Any:
    return actor if actor is not None else SYSTEM


def require_operator(*, actor, deployment: Deployment) -> None:
    """Check that ``actor`` may run the deployment (None is the system, which may): an Owner or Admin of
    its organisation, or a Trader who may trade every one of its accounts.

    Raises StrategyForbidden (403) for other roles, BrokerAccountNotFound/BrokerAccountForbidden for a
    Trader missing an account.
    """
    if actor is None:
        return
    role = require_role(
        user=actor,
        organisation_id=deployment.organisation_id,
        roles=WRITERS,
        error=StrategyForbidden,
        what="run strategy deployments",
    )
    if role not in {"owner", "admin"}:
        for account_id in deployment.accounts.values_list("account_id", flat=True):
            account_get_for_user(user=actor, account_id=account_id, access="trade")


# Creating


def _count(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise DeploymentInvalid(f"{field} must be a whole number from 1 to {MAX_COUNT}.", extra={"field": field})
    return value


def _amount(value: object, field: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise DeploymentInvalid(f"{field} must be a number.", extra={"field": field})
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise DeploymentInvalid(f"{field} must be a number.", extra={"field": field}) from None
    if not amount.is_finite() or not 0 < amount < MAX_AMOUNT or amount != amount.quantize(Decimal("0.0001")):
        raise DeploymentInvalid(
            f"{field} must be a positive amount below {MAX_AMOUNT:,} with at most 4 decimal places.",
            extra={"field": field},
        )
    return amount


def _time(value: object, field: str, *, optional: bool = False) -> time | None:
    if value is None and optional:
        return None
    if not isinstance(value, time) or value.tzinfo is not None:
        raise DeploymentInvalid(f"{field} must be a time of day (IST).", extra={"field": field})
    return value


def _accounts(*, actor, organisation_id: int, mode: str, accounts: object) -> list[tuple[BrokerAccount, int]]:
    """The accounts the actor may trade, of the organisation, in the deployment's mode, with their multipliers."""
    if not isinstance(accounts, list | tuple) or not accounts:
        raise DeploymentInvalid("A deployment needs at least one account.", extra={"field": "accounts"})
    if len(accounts) > MAX_ACCOUNTS:
        raise DeploymentInvalid(
            f"A deployment trades at most {MAX_ACCOUNTS} accounts.", extra={"field": "accounts", "max": MAX_ACCOUNTS}
        )
    chosen: list[tuple[BrokerAccount, int]] = []
    seen: set[int] = set()
    for i, item in enumerate(accounts):
        field = f"accounts.{i}"
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise DeploymentInvalid("Each account is a pair (account, multiplier).", extra={"field": field})
        ref, multiplier = item
        account_id = ref.pk if isinstance(ref, BrokerAccount) else ref
        if isinstance(account_id, bool) or not isinstance(account_id, int):
            raise DeploymentInvalid("An account is named by its id.", extra={"field": field})
        if isinstance(multiplier, bool) or not isinstance(multiplier, int) or not 1 <= multiplier <= MAX_MULTIPLIER:
            raise DeploymentInvalid(
                f"A multiplier is a whole number from 1 to {MAX_MULTIPLIER}.",
                code="deployment_multiplier_invalid",
                extra={"field": f"{field}.multiplier"},
            )
        if account_id in seen:
            raise DeploymentInvalid("An account is named twice.", extra={"field": field, "account_id": account_id})
        seen.add(account_id)
        account = account_get_for_user(user=actor, account_id=account_id, access="trade")
        if account.organisation_id != organisation_id:
            raise DeploymentInvalid(
                "The account belongs to another organisation.",
                code="deployment_account_other_organisation",
                extra={"field": field, "account_id": account_id},
            )
        if not account.is_active:
            raise DeploymentInvalid(
                "The account is not active.",
                code="deployment_account_inactive",
                extra={"field": field, "account_id": account_id},
            )
        if account.is_paper != (mode == Deployment.Mode.PAPER):
            raise DeploymentModeMismatch(
                f"A {mode} deployment cannot trade {'a paper' if account.is_paper else 'a live'} account: "
                "paper and live never mix.",
                extra={"field": field, "account_id": account_id, "mode": mode},
            )
        chosen.append((account, multiplier))
    return chosen


def _algo_id(algo_id: object, organisation_id: int) -> AlgoId | None:
    if algo_id is None:
        return None
    algo_pk = algo_id.pk if isinstance(algo_id, AlgoId) else algo_id
    found = (
        AlgoId.objects.filter(pk=algo_pk, organisation_id=organisation_id, is_active=True).first()
        if isinstance(algo_pk, int) and not isinstance(algo_pk, bool)
        else None
    )
    if found is None:
        raise AlgoIdInvalid(
            "The algo id is not an active algo id of the deployment's organisation.", extra={"field": "algo_id"}
        )
    return found


def deployment_create(
    *,
    actor,
    definition: StrategyDefinition,
    name: str,
    mode: str,
    accounts: Sequence[tuple[BrokerAccount | int, int]],
    algo_id: AlgoId | int | None = None,
    start_time: time = time(9, 15),
    end_time: time = time(15, 30),
    square_off_time: time | None = time(15, 15),
    max_loss: Decimal | None = None,
    max_orders: int | None = None,
    max_open_positions: int | None = None,
    mtm_stop_loss: Decimal | None = None,
    mtm_target: Decimal | None = None,
    trailing_stop: Decimal | None = None,
) -> Deployment:
    """Create a deployment of ``definition`` over ``accounts`` (pairs of account and multiplier); return
    it, status created.

    Raises StrategyForbidden (403) unless the actor is an Owner, Admin or Trader of the definition's
    organisation; BrokerAccountNotFound/BrokerAccountForbidden for an account the actor may not trade;
    DeploymentModeMismatch (422) for an account of the other mode; DeploymentInvalid (422, with
    ``extra["field"]``) for anything malformed; AlgoIdInvalid (422) for an algo id that is not an active
    one of the organisation; StrategyInvalid (422) when the definition's parameters no longer validate.
    """
    organisation_id = definition.organisation_id
    require_role(
        user=actor, organisation_id=organisation_id, roles=WRITERS, error=StrategyForbidden, what="deploy strategies"
    )
    name = clean_text(name, field="name", max_length=100, required=True, error=DeploymentInvalid)
    if mode not in Deployment.Mode.values:
        raise DeploymentInvalid("mode must be paper or live.", code="deployment_mode_invalid", extra={"field": "mode"})
    start = _time(start_time, "start_time")
    end = _time(end_time, "end_time")
    square_off = _time(square_off_time, "square_off_time", optional=True)
    assert start is not None and end is not None
    if not start < end:
        raise DeploymentInvalid("start_time must be before end_time.", extra={"field": "end_time"})
    figures = {
        "max_loss": _amount(max_loss, "max_loss"),
        "max_orders": _count(max_orders, "max_orders"),
        "max_open_positions": _count(max_open_positions, "max_open_positions"),
        "mtm_stop_loss": _amount(mtm_stop_loss, "mtm_stop_loss"),
        "mtm_target": _amount(mtm_target, "mtm_target"),
        "trailing_stop": _amount(trailing_stop, "trailing_stop"),
    }
    chosen = _accounts(actor=actor, organisation_id=organisation_id, mode=mode, accounts=accounts)
    algo = _algo_id(algo_id, organisation_id)
    params = validate_params(definition.kind, definition.params).model_dump(mode="json")
    with transaction.atomic():
        deployment = Deployment.objects.create(
            organisation_id=organisation_id,
            definition=definition,
            name=name,
            kind=definition.kind,
            params=params,
            mode=mode,
            algo_id=algo,
            start_time=start,
            end_time=end,
            square_off_time=square_off,
            created_by=actor,
            **figures,
        )
        DeploymentAccount.objects.bulk_create(
            [DeploymentAccount(deployment=deployment, account=account, multiplier=m) for account, m in chosen]
        )
        payload = {
            "definition_id": definition.pk,
            "name": name,
            "kind": definition.kind,
            "mode": mode,
            "algo_id": algo.code if algo else None,
            "accounts": [{"account_id": account.pk, "multiplier": m} for account, m in chosen],
            **{k: str(v) if isinstance(v, Decimal) else v for k, v in figures.items()},
        }
        log_event(deployment, DeploymentEvent.Kind.LIFECYCLE, f"created ({mode})", **payload)
        audit_record(actor=actor, action="strategy.deployment.created", target=deployment, payload=payload)
    return deployment


# The lifecycle


def _step(
    *,
    actor,
    deployment: Deployment,
    from_statuses: Sequence[str],
    to: str,
    step: str,
    reason: str,
    **fields: Any,
) -> Deployment:
    """Move the deployment from one of ``from_statuses`` to ``to`` with a conditional update, log and
    audit it; return it refreshed. Raises DeploymentStateConflict (409) when it is in no such status."""
    reason = clean_text(reason, field="reason", max_length=300, required=False, error=DeploymentInvalid)
    with transaction.atomic():
        moved = Deployment.objects.filter(pk=deployment.pk, status__in=from_statuses).update(
            status=to, status_reason=reason, **fields
        )
        if not moved:
            current = Deployment.objects.filter(pk=deployment.pk).values_list("status", flat=True).first()
            raise DeploymentStateConflict(
                f"A {current} deployment cannot be {step}.", extra={"status": current or "", "step": step}
            )
        log_event(
            deployment,
            DeploymentEvent.Kind.LIFECYCLE,
            f"{step}" + (f": {reason}" if reason else ""),
            step=step,
            status=to,
            actor_id=getattr(actor, "pk", None),
        )
        audit_record(
            actor=_actor_label(actor),
            action=f"strategy.deployment.{step}",
            target=deployment,
            payload={"status": to, "reason": reason, "organisation_id": deployment.organisation_id},
        )
    deployment.refresh_from_db()
    return deployment


def live_algo_id(deployment: Deployment) -> AlgoId:
    """The active algo id of the deployment's organisation a live deployment trades under; raises
    DeploymentNeedsAlgoId (409) when it has none or it was deactivated."""
    algo = (
        AlgoId.objects.filter(
            pk=deployment.algo_id_id, organisation_id=deployment.organisation_id, is_active=True
        ).first()
        if deployment.algo_id_id
        else None
    )
    if algo is None:
        raise DeploymentNeedsAlgoId(
            "A live deployment needs an active algo id of its organisation.",
            extra={"deployment_id": deployment.pk},
        )
    return algo


def order_algo_id(deployment: Deployment) -> str:
    """The algo id its orders carry: its own code, or the generic id for a paper deployment without one."""
    if deployment.algo_id_id:
        return AlgoId.objects.filter(pk=deployment.algo_id_id).values_list("code", flat=True).get()
    return GENERIC_ALGO_ID


def deployment_start(*, actor, deployment: Deployment, reason: str = "") -> Deployment:
    """Start a created deployment; return it, running.

    Raises DeploymentNeedsAlgoId (409) for a live deployment without an active algo id of its
    organisation, DeploymentStateConflict (409) unless it is created, StrategyForbidden (403).
    """
    require_operator(actor=actor, deployment=deployment)
    if deployment.mode == Deployment.Mode.LIVE:
        live_algo_id(deployment)
    return _step(
        actor=actor,
        deployment=deployment,
        from_statuses=[Status.CREATED],
        to=Status.RUNNING,
        step="started",
        reason=reason,
        started_at=timezone.now(),
    )


def deployment_pause(*, actor, deployment: Deployment, reason: str = "") -> Deployment:
    """Pause a running deployment (it places nothing until resumed); return it."""
    require_operator(actor=actor, deployment=deployment)
    return _step(
        actor=actor,
        deployment=deployment,
        from_statuses=[Status.RUNNING],
        to=Status.PAUSED,
        step="paused",
        reason=reason,
    )


def deployment_resume(*, actor, deployment: Deployment, reason: str = "") -> Deployment:
    """Resume a paused deployment; return it, running. A live one needs its algo id still active."""
    require_operator(actor=actor, deployment=deployment)
    if deployment.mode == Deployment.Mode.LIVE:
        live_algo_id(deployment)
    return _step(
        actor=actor,
        deployment=deployment,
        from_statuses=[Status.PAUSED],
        to=Status.RUNNING,
        step="resumed",
        reason=reason,
    )


def deployment_stop(*, actor, deployment: Deployment, reason: str = "") -> Deployment:
    """Stop a deployment for good (its orders and positions stay as they are); return it."""
    require_operator(actor=actor, deployment=deployment)
    return _step(
        actor=actor,
        deployment=deployment,
        from_statuses=[Status.CREATED, Status.RUNNING, Status.PAUSED],
        to=Status.STOPPED,
        step="stopped",
        reason=reason,
        stopped_at=timezone.now(),
    )


def deployment_emergency_stop(*, actor, deployment: Deployment, reason: str = "") -> dict[str, int]:
    """Stop the deployment, cancel its working orders and square off exactly its own positions (its
    own trades; the account's manual positions stay); return counts.

    A deployment already stopped is flattened again (what it still holds, if anything): the square-off
    orders' idempotency keys name the position they close, so concurrent calls place them once.
    Refusals (a risk rule, the broker) are logged, not raised. Raises StrategyForbidden (403).
    """
    require_operator(actor=actor, deployment=deployment)
    try:
        _step(
            actor=actor,
            deployment=deployment,
            from_statuses=[Status.CREATED, Status.RUNNING, Status.PAUSED],
            to=Status.STOPPED,
            step="emergency_stopped",
            reason=reason,
            stopped_at=timezone.now(),
        )
    except DeploymentStateConflict:
        log_event(deployment, DeploymentEvent.Kind.EXIT, "emergency stop of a stopped deployment: flattening again")
    cancelled = _cancel_working(actor=actor, deployment=deployment)
    squared = _square_off_own(deployment=deployment)
    log_event(
        deployment,
        DeploymentEvent.Kind.EXIT,
        f"emergency stop: {cancelled} orders cancelled, {squared} square-off orders placed",
        cancelled=cancelled,
        squared_off=squared,
    )
    return {"cancelled": cancelled, "squared_off": squared}


def _cancel_working(*, actor, deployment: Deployment) -> int:
    cancelled = 0
    for order in deployment_working_orders(deployment=deployment).select_related("account", "instrument"):
        try:
            cancel_order(actor=actor, order=order)
            cancelled += 1
        except ApplicationError as error:
            log_event(
                deployment,
                DeploymentEvent.Kind.ERROR,
                f"order {order.pk} not cancelled: {error.message}",
                order_id=order.pk,
                code=error.code,
                status=order.status,
            )
    return cancelled


def _square_off_own(*, deployment: Deployment) -> int:
    """Close each of the deployment's own open positions with market orders carrying its algo id."""
    algo = order_algo_id(deployment)
    accounts = {a.pk: a for a in BrokerAccount.objects.filter(pk__in=deployment.accounts.values("account_id"))}
    placed = 0
    for position in deployment_positions(deployment=deployment):
        if not position.net_quantity:
            continue
        account = accounts[position.account_id]
        # Never past the account's own position: what a kill switch or a manual exit closed already
        # is not closed twice (which would open a position the other way).
        held = (
            Position.objects.filter(
                account_id=account.pk, instrument_id=position.instrument_id, product=position.product
            )
            .values_list("net_quantity", flat=True)
            .first()
            or 0
        )
        quantity = min(abs(position.net_quantity), max(held if position.net_quantity > 0 else -held, 0))
        if not quantity:
            log_event(
                deployment,
                DeploymentEvent.Kind.EXIT,
                f"{position.leg} on {account.label}: nothing to square off, the account is flat or the other way",
                account_id=account.pk,
                instrument_id=position.instrument_id,
                own=position.net_quantity,
                held=held,
            )
            continue
        request = OrderRequest(
            instrument_id=position.instrument_id,
            side=Side.SELL if position.net_quantity > 0 else Side.BUY,
            quantity=quantity,
            order_type=OrderType.MARKET,
            product=position.product,
            tag=position.leg,
            strategy=deployment.order_key,
            algo_id=algo,
        )
        # Names the position it closes (the leg by a digest, to fit): a concurrent call computes the
        # same key and places nothing new; once more trades change the position, the key changes too.
        traded = position.buy_quantity + position.sell_quantity
        leg = hashlib.sha256(position.leg.encode()).hexdigest()[:12]
        key = (
            f"dep{deployment.pk}:{position.account_id}:exit:{position.instrument_id}:{position.product}:"
            f"{position.net_quantity}:{traded}:{leg}"
        )
        try:
            orders = place_sliced_order(
                actor=deployment.created_by,
                account=account,
                request=request,
                source="strategy",
                idempotency_key=key,
            )
        except ApplicationError as error:
            log_event(
                deployment,
                DeploymentEvent.Kind.REJECTION,
                f"square-off of {position.leg} on {account.label} refused: {error.message}",
                account_id=account.pk,
                instrument_id=position.instrument_id,
                code=error.code,
            )
            continue
        placed += len(orders)
        for order in orders:
            log_event(
                deployment,
                DeploymentEvent.Kind.EXIT,
                f"square-off {order.side} {order.quantity} ({position.leg}) on {account.label}: order {order.pk} "
                f"{order.status}",
                account_id=account.pk,
                order_id=order.pk,
                status=order.status,
                leg=position.leg,
            )
    return placed


def deployment_account_halt(*, deployment_account: DeploymentAccount, reason: str) -> bool:
    """Halt one account of a deployment (its kill switch is on): it places nothing more, the other
    accounts go on. Return whether this call halted it (False when it was halted already)."""
    with transaction.atomic():
        if not DeploymentAccount.objects.filter(
            pk=deployment_account.pk, status=DeploymentAccount.Status.ACTIVE
        ).update(status=DeploymentAccount.Status.HALTED):
            return False
        deployment = deployment_account.deployment
        log_event(
            deployment,
            DeploymentEvent.Kind.LIFECYCLE,
            f"account {deployment_account.account_id} halted: {reason}"[:500],
            account_id=deployment_account.account_id,
            step="account_halted",
        )
        audit_record(
            actor=SYSTEM,
            action="strategy.deployment.account_halted",
            target=deployment,
            payload={"account_id": deployment_account.account_id, "reason": reason[:300]},
        )
    deployment_account.status = DeploymentAccount.Status.HALTED
    return True


__all__ = [
    "deployment_account_halt",
    "deployment_create",
    "deployment_emergency_stop",
    "deployment_pause",
    "deployment_resume",
    "deployment_start",
    "deployment_stop",
    "live_algo_id",
    "log_event",
    "order_algo_id",
    "require_operator",
]
