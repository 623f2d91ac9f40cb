"""Placing a deployment's intents: each intent on each of its active accounts, the quantity times
the account's multiplier, through the order service (``orders.services``), idempotently.

Every order carries the deployment's algo id (for a paper deployment without one, the generic id),
``strategy = deployment.order_key``, ``tag = intent.leg`` and the idempotency key
``dep<deployment>:<account>:<intent key>``; each outcome is a ``StrategyIntent`` (placed, rejected or
failed) and a line of the deployment's log. A refusal (a risk rule, the broker) is logged, never
raised. An account whose kill switch is on is halted; the others go on.

Not to be called inside an open transaction (the order service's rule).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.errors import ApplicationError
from marketdata.models import Instrument
from orders.models import Order, Side
from orders.services import OrderRequest, place_sliced_order
from orders.states import Status as OrderStatus
from rms.errors import RiskRejected
from rms.services import MAX_ORDER_QUANTITY, DeploymentLimits, active_kill_switch
from strategies.contract import Intent
from strategies.errors import DeploymentInvalid, DeploymentNeedsAlgoId
from strategies.models import Deployment, DeploymentAccount, DeploymentEvent, StrategyIntent
from strategies.selectors import (
    DEPLOYMENT_SOURCES,
    DeploymentPosition,
    deployment_orders_today,
    deployment_positions,
    pnl_of,
)
from strategies.services.deployments import deployment_account_halt, live_algo_id, log_event, order_algo_id

logger = logging.getLogger(__name__)

Kind = DeploymentEvent.Kind
MAX_KEY = 100  # Order.idempotency_key and StrategyIntent.key


def idempotency_key(deployment: Deployment, account_id: int, intent_key: str) -> str:
    return f"dep{deployment.pk}:{account_id}:{intent_key}"


def _problem(deployment: Deployment, intent: object, instruments: set[int], account_id: int) -> str | None:
    """What makes an intent unplaceable before any order (None when it is well formed); ``account_id``
    is the deployment's largest, whose idempotency key is the longest."""
    if not isinstance(intent, Intent):
        return "not an Intent"
    if not isinstance(intent.key, str) or not intent.key:
        return "it has no key"
    # with a slice suffix (":49") the key must still fit the order's idempotency key
    if len(idempotency_key(deployment, account_id, intent.key)) + 3 > MAX_KEY:
        return "its key is too long"
    if not isinstance(intent.leg, str) or not 0 < len(intent.leg) <= 40:
        return "its leg must be a name of 1 to 40 characters"
    if intent.side not in Side.values:
        return "its side must be BUY or SELL"
    if isinstance(intent.quantity, bool) or not isinstance(intent.quantity, int):
        return "its quantity is not a whole number"
    if not 0 < intent.quantity <= MAX_ORDER_QUANTITY:
        return f"its quantity must be from 1 to {MAX_ORDER_QUANTITY}"
    if not isinstance(intent.instrument_id, int) or intent.instrument_id not in instruments:
        return f"instrument {intent.instrument_id!r} was not found"
    return None


def _limits(
    deployment: Deployment,
    *,
    account_id: int,
    intent: Intent,
    quantity: int,
    positions: list[DeploymentPosition],
    orders_today: int,
    pnl: Decimal,
) -> DeploymentLimits:
    """The deployment's limits and standing for this order (rms checks them before an entry)."""
    open_legs = {(p.instrument_id, p.product, p.leg) for p in positions if p.net_quantity}
    own = next(
        (
            p.net_quantity
            for p in positions
            if (p.account_id, p.instrument_id, p.product, p.leg)
            == (account_id, intent.instrument_id, intent.product, intent.leg)
        ),
        0,
    )
    exits = bool(own) and (intent.side == Side.SELL) == (own > 0) and quantity <= abs(own)
    return DeploymentLimits(
        key=deployment.order_key,
        max_orders=deployment.max_orders,
        max_loss=deployment.max_loss,
        max_open_positions=deployment.max_open_positions,
        orders_today=orders_today,
        pnl=pnl,
        open_positions=len(open_legs),
        opens_position=(intent.instrument_id, intent.product, intent.leg) not in open_legs,
        exits=exits,
    )


def _record(
    deployment: Deployment,
    *,
    account,
    intent: Intent,
    quantity: int,
    status: str,
    order: Order | None = None,
    message: str = "",
) -> StrategyIntent:
    """Write the intent's outcome on one account (or return the one a concurrent call wrote)."""
    try:
        with transaction.atomic():
            return StrategyIntent.objects.create(
                deployment=deployment,
                account=account,
                key=intent.key,
                leg=intent.leg,
                instrument_id=intent.instrument_id,
                side=intent.side,
                quantity=quantity,
                reason=intent.reason[:200] if isinstance(intent.reason, str) else "",
                order=order,
                status=status,
                message=message[:300],
            )
    except IntegrityError:
        return StrategyIntent.objects.get(deployment=deployment, account=account, key=intent.key)


def deployment_apply(
    *,
    deployment: Deployment,
    intents: Sequence[Intent],
    source: str = "strategy",
    actor=None,
) -> list[StrategyIntent]:
    """Place ``intents`` on each active account of a running deployment; return their outcomes
    (``StrategyIntent``s, one per intent and account, in that order; those recorded by an earlier call
    for the same keys are returned as they are, and nothing is placed again).

    A deployment not running places nothing (logged). A live deployment without an active algo id
    places nothing (logged). A malformed intent is logged and skipped. ``actor`` (who asked: an operator
    or a webhook's owner) is logged; the orders are placed as the deployment's creator. Raises
    DeploymentInvalid for a source other than strategy or webhook.
    """
    if source not in DEPLOYMENT_SOURCES:
        raise DeploymentInvalid("source must be strategy or webhook.", extra={"field": "source"})
    current = Deployment.objects.select_related("created_by").get(pk=deployment.pk)
    if current.status != Deployment.Status.RUNNING:
        if intents:
            log_event(
                current,
                Kind.REJECTION,
                f"{len(intents)} intents not placed: the deployment is {current.status}",
                keys=[str(getattr(i, "key", ""))[:100] for i in intents][:50],
                code="deployment_not_running",
            )
        return []
    if current.mode == Deployment.Mode.LIVE:
        try:
            live_algo_id(current)
        except DeploymentNeedsAlgoId as error:
            log_event(current, Kind.REJECTION, f"{len(intents)} intents not placed: {error.message}", code=error.code)
            return []
    algo = order_algo_id(current)
    ids = {i.instrument_id for i in intents if isinstance(i, Intent) and isinstance(i.instrument_id, int)}
    known = set(Instrument.objects.filter(pk__in=ids).values_list("pk", flat=True))
    legs = list(
        DeploymentAccount.objects.filter(deployment=current, status=DeploymentAccount.Status.ACTIVE)
        .select_related("account")
        .order_by("pk")
    )
    largest = max((leg.account_id for leg in legs), default=0)
    placeable: list[Intent] = []
    for intent in intents:
        problem = _problem(current, intent, known, largest)
        if problem:
            log_event(
                current,
                Kind.REJECTION,
                f"intent not placed: {problem}",
                key=str(getattr(intent, "key", ""))[:100],
                code="intent_invalid",
            )
        else:
            placeable.append(intent)
    results: list[StrategyIntent] = []
    halted: set[int] = set()
    # A deployment's standing (orders today, positions, P&L) is read only for the limits it has.
    orders_today = deployment_orders_today(deployment=current) if current.max_orders is not None else 0
    # Positions also tell an exit, which passes every limit.
    needs_positions = any(v is not None for v in (current.max_orders, current.max_loss, current.max_open_positions))
    for intent in placeable:
        recorded = {
            si.account_id: si
            for si in StrategyIntent.objects.filter(deployment=current, key=intent.key).select_related("order")
        }
        if all(leg.account_id in recorded for leg in legs):  # applied before: nothing to place or log
            results += [recorded[leg.account_id] for leg in legs]
            continue
        # Stopped or paused meanwhile (an emergency stop): nothing more is placed.
        if not Deployment.objects.filter(pk=current.pk, status=Deployment.Status.RUNNING).exists():
            log_event(
                current,
                Kind.REJECTION,
                f"intent {intent.key} not placed: the deployment stopped running",
                key=intent.key,
                code="deployment_not_running",
            )
            break
        positions = deployment_positions(deployment=current) if needs_positions else []
        pnl = pnl_of(positions).total if needs_positions else Decimal(0)
        log_event(
            current,
            Kind.INTENT,
            f"{intent.side} {intent.quantity} ({intent.leg})" + (f": {intent.reason}" if intent.reason else ""),
            key=intent.key,
            leg=intent.leg,
            instrument_id=intent.instrument_id,
            actor_id=getattr(actor, "pk", None),
            source=source,
        )
        for leg in legs:
            if leg.pk in halted:
                continue
            account = leg.account
            existing = recorded.get(account.pk)
            if existing is not None:
                results.append(existing)
                continue
            switch = active_kill_switch(
                organisation_id=account.organisation_id, account_id=account.pk, user_id=current.created_by_id
            )
            if switch:
                deployment_account_halt(deployment_account=leg, reason=f"kill switch {switch}")
                halted.add(leg.pk)
                continue
            quantity = intent.quantity * leg.multiplier
            if account.is_paper != (current.mode == Deployment.Mode.PAPER):
                # Refused at creation; checked again here: a paper deployment never places a live order.
                message = f"a {current.mode} deployment cannot trade account {account.label}: paper and live never mix"
                results.append(
                    _reject(
                        current,
                        account=account,
                        intent=intent,
                        quantity=quantity,
                        message=message,
                        code="deployment_mode_mismatch",
                    )
                )
                continue
            if quantity > MAX_ORDER_QUANTITY:
                message = f"{intent.quantity} x {leg.multiplier} is above the largest order, {MAX_ORDER_QUANTITY}"
                results.append(
                    _reject(
                        current,
                        account=account,
                        intent=intent,
                        quantity=intent.quantity,
                        message=message,
                        code="quantity_out_of_range",
                    )
                )
                continue
            request = OrderRequest(
                instrument_id=intent.instrument_id,
                side=intent.side,
                quantity=quantity,
                order_type=intent.order_type,
                product=intent.product,
                price=intent.price,
                trigger_price=intent.trigger_price,
                tag=intent.leg,
                strategy=current.order_key,
                algo_id=algo,
                deployment_limits=_limits(
                    current,
                    account_id=account.pk,
                    intent=intent,
                    quantity=quantity,
                    positions=positions,
                    orders_today=orders_today,
                    pnl=pnl,
                ),
            )
            try:
                orders = place_sliced_order(
                    actor=current.created_by,
                    account=account,
                    request=request,
                    source=source,
                    idempotency_key=idempotency_key(current, account.pk, intent.key),
                )
            except ApplicationError as error:  # a risk rule's or the broker's refusal, or invalid input
                results.append(
                    _reject(
                        current,
                        account=account,
                        intent=intent,
                        quantity=quantity,
                        message=error.message,
                        code=error.code,
                    )
                )
                if isinstance(error, RiskRejected) and error.rule == "kill_switch_active":
                    deployment_account_halt(deployment_account=leg, reason=error.message)
                    halted.add(leg.pk)
                continue
            except Exception as error:  # a bug below must not stop the other accounts: recorded as failed
                logger.exception("deployment %s: placing %s on account %s failed", current.pk, intent.key, account.pk)
                results.append(
                    _reject(
                        current,
                        account=account,
                        intent=intent,
                        quantity=quantity,
                        message=str(error)[:200],
                        code="failed",
                        status=StrategyIntent.Status.FAILED,
                    )
                )
                continue
            orders_today += len(orders)
            results.append(_placed(current, account=account, intent=intent, quantity=quantity, orders=orders))
    return results


def _reject(
    deployment: Deployment,
    *,
    account,
    intent: Intent,
    quantity: int,
    message: str,
    code: str,
    status: str = StrategyIntent.Status.REJECTED,
) -> StrategyIntent:
    log_event(
        deployment,
        Kind.ERROR if status == StrategyIntent.Status.FAILED else Kind.REJECTION,
        f"{intent.side} {quantity} ({intent.leg}) on {account.label} refused: {message}",
        key=intent.key,
        account_id=account.pk,
        code=code,
    )
    return _record(
        deployment, account=account, intent=intent, quantity=quantity, status=status, message=f"{code}: {message}"
    )


def _placed(deployment: Deployment, *, account, intent: Intent, quantity: int, orders: list[Order]) -> StrategyIntent:
    first = orders[0]
    refused = all(order.status == OrderStatus.REJECTED for order in orders)
    for order in orders:
        log_event(
            deployment,
            Kind.REJECTION if order.status == OrderStatus.REJECTED else Kind.ORDER,
            f"{order.side} {order.quantity} ({intent.leg}) on {account.label}: order {order.pk} {order.status}"
            + (f" ({order.message})" if order.message else ""),
            key=intent.key,
            account_id=account.pk,
            order_id=order.pk,
            status=order.status,
        )
    return _record(
        deployment,
        account=account,
        intent=intent,
        quantity=quantity,
        status=StrategyIntent.Status.REJECTED if refused else StrategyIntent.Status.PLACED,
        order=first,
        message=first.message if refused else "",
    )
