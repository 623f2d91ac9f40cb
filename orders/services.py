"""The order management system's writes: one service per act.

Every path (browser form, REST API, strategy, webhook, square-off, kill switch) places through
``place_order``: instrument lookup -> ``rms.services.check_pre_trade`` under the account lock -> one
transaction for the order row, its event, the margin block and the audit event -> the broker call
outside the transaction -> status. A timeout leaves the order UNKNOWN for ``reconcile_order``.
Broker updates of any kind go through ``apply_broker_update``. None of these may be called inside an
open transaction: the broker must only ever see committed orders.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.services import audit_record
from brokers.adapters.base import (
    BrokerModifyRequest,
    BrokerOrderRequest,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
    BrokerUpdate,
)
from brokers.adapters.registry import get_adapter
from core.canonical_json import canonical_dumps
from core.errors import ApplicationError
from infra import prepared
from infra.prepared import Prepared
from marketdata.models import Instrument
from marketdata.quotes import get_quote, get_quotes
from orders import metrics, push
from orders.errors import OrderInvalid, OrderStateConflict, PositionNotFound
from orders.locks import lock_accounts, lock_orders, today_ist
from orders.margin import group_margin, refresh_margin, working_orders
from orders.models import (
    BROKER_UNANSWERED,
    Basket,
    Order,
    OrderEvent,
    OrderType,
    Position,
    Product,
    Side,
    Source,
    Trade,
    Validity,
)
from orders.states import LIVE, TERMINAL, WORKING, Status, can_move
from rms.errors import RiskRejected
from rms.services import (
    STOP_TYPES,
    OrderIntent,
    RiskState,
    active_kill_switch,
    check_order_numbers,
    check_pre_trade,
    kill_switch_set,
    record_rejection,
    validate_order_input,
)

logger = logging.getLogger(__name__)
MAX_SLICES = 50  # children of one sliced order, as many as a basket's legs
GENERIC_ALGO_ID = "GENERIC"  # exchange's generic id for orders from unregistered algos / manual orders


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a caller asks for; the same for every source."""

    instrument_id: int
    side: str
    quantity: int
    order_type: str
    product: str
    validity: str = Validity.DAY
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    tag: str = ""
    strategy: str = ""
    algo_id: str = ""


def _actor_id(actor) -> int | None:
    return getattr(actor, "pk", None) if actor is not None and not isinstance(actor, str) else None


def _audit_actor(actor):
    return actor if actor is not None else "system:orders"


def _payload(request: OrderRequest, **extra) -> dict:
    return {
        "instrument_id": request.instrument_id,
        "side": request.side,
        "quantity": request.quantity,
        "order_type": request.order_type,
        "product": request.product,
        "validity": request.validity,
        "price": _audit_number(request.price),
        "trigger_price": _audit_number(request.trigger_price),
        **extra,
    }


def _audit_number(value):
    """A price as the audit trail can hold it: a refused NaN or infinity is recorded as its text."""
    return str(value) if isinstance(value, Decimal) and not value.is_finite() else value


def _check_choices(request: OrderRequest) -> None:
    for name, value, choices in (
        ("side", request.side, Side.values),
        ("order_type", request.order_type, OrderType.values),
        ("product", request.product, Product.values),
        ("validity", request.validity, Validity.values),
    ):
        if value not in choices:
            raise OrderInvalid(
                f"{name} must be one of {', '.join(choices)}.", code=f"invalid_{name}", extra={name: value}
            )


def _check_numbers(request: OrderRequest) -> None:
    """Refuse a quantity or price that is not a bounded number before any arithmetic on it (margin,
    value, band): raises OrderInvalid for a value of the wrong type, RiskRejected naming the field for
    one out of range or not finite (rms.services.check_order_numbers)."""
    if isinstance(request.quantity, bool) or not isinstance(request.quantity, int):
        raise OrderInvalid("Quantity must be a whole number.", code="quantity_not_whole", extra={"field": "quantity"})
    for name in ("price", "trigger_price"):
        value = getattr(request, name)
        if value is not None and not isinstance(value, Decimal):
            raise OrderInvalid(
                f"{name.replace('_', ' ').capitalize()} must be a number.",
                code=f"{name}_not_a_number",
                extra={"field": name},
            )
    check_order_numbers(quantity=request.quantity, price=request.price, trigger_price=request.trigger_price)


@contextmanager
def _arithmetic_refused():
    """Turn arithmetic the bounds did not foresee (margin, value, band) into a 422, never a 500."""
    try:
        yield
    except ArithmeticError:
        raise OrderInvalid(
            "The order's numbers are too large to compute its value and margin.", code="order_value_out_of_range"
        ) from None


def _intent(*, account, actor, instrument: Instrument, request: OrderRequest) -> OrderIntent:
    return OrderIntent(
        account_id=account.pk,
        organisation_id=account.organisation_id,
        user_id=_actor_id(actor),
        strategy=request.strategy,
        exchange=instrument.exchange,
        instrument_type=instrument.instrument_type,
        lot_size=instrument.lot_size,
        tick_size=instrument.tick_size,
        freeze_quantity=instrument.freeze_quantity,
        lower_circuit=instrument.lower_circuit,
        upper_circuit=instrument.upper_circuit,
        expiry=instrument.expiry,
        tradable=instrument.tradable,
        side=request.side,
        quantity=request.quantity,
        order_type=request.order_type,
        product=request.product,
        validity=request.validity,
        price=request.price,
        trigger_price=request.trigger_price,
    )


def _mtm(positions: list[Position], ltps: dict[int, Decimal | None]) -> Decimal:
    """Return the unrealised P&L of ``positions`` at the last prices: ``ltps`` holds those already read
    (the order's own instrument), the others are read now."""
    positions = [p for p in positions if p.net_quantity]
    missing = {p.instrument_id for p in positions} - ltps.keys()
    if missing:
        ltps = {**ltps, **{i: q.ltp for i, q in get_quotes(list(missing)).items()}}
    return sum((p.unrealised_pnl(ltps.get(p.instrument_id)) for p in positions), Decimal(0))


@dataclass(frozen=True, slots=True)
class _Group:
    """The (account, instrument, product) group an order belongs to, as read under the account lock."""

    position: Position | None
    orders: list[tuple[str, int, Decimal]]  # working orders: (side, remaining, margin price)


# The reads every order placed makes, compiled once (infra/prepared.py).
_POSITIONS_FOR_RISK = Prepared(
    lambda p: Position.objects.filter(account_id=p.account).filter(
        ~Q(net_quantity=0) | Q(instrument_id=p.instrument, product=p.product)
    ),
    account=int,
    instrument=int,
    product=str,
)
_OPEN_ORDERS = Prepared(
    lambda p: (
        Order.objects.filter(account_id=p.account, status__in=LIVE)
        .order_by()
        .values("account_id")
        .annotate(n=Count("pk"))
        .values_list("n", flat=True)
    ),
    account=int,
)
_INSTRUMENT = Prepared(lambda p: Instrument.objects.filter(pk=p.pk)[:1], pk=int)


def _open_orders(account_id: int, exclude_order: Order | None) -> int:
    """Return how many of the account's orders are working, ``exclude_order`` (being modified) aside."""
    count = _OPEN_ORDERS.first(account=account_id) or 0
    if exclude_order is not None and exclude_order.status in LIVE:
        count -= 1
    return count


def _risk_state(
    *, funds, account, actor, instrument, request: OrderRequest, adapter, ltp, exclude_order=None
) -> tuple[RiskState, _Group]:
    """Read what the pre-trade rules need, under the account lock (so the numbers cannot move); return
    it with the order's group as read (position and working orders, for the margin refresh)."""
    # One read for the open positions (for MTM) and the order's own group, open or flat.
    positions = _POSITIONS_FOR_RISK.all(account=account.pk, instrument=instrument.pk, product=str(request.product))
    position = next((p for p in positions if p.instrument_id == instrument.pk and p.product == request.product), None)
    net = position.net_quantity if position else 0
    orders = working_orders(
        account_id=account.pk,
        instrument_id=instrument.pk,
        product=request.product,
        exclude_pk=exclude_order.pk if exclude_order is not None else None,
    )
    # An exit only if it and the exits already working together cannot take the position past flat.
    exiting = sum(remaining for side, remaining, _ in orders if side == request.side)
    reduces = bool(net) and (request.side == Side.SELL) == (net > 0) and request.quantity + exiting <= abs(net)
    price = request.price or request.trigger_price or ltp or Decimal(0)
    proposed = group_margin(
        adapter=adapter,
        instrument=instrument,
        product=request.product,
        net=net,
        average=position.average_price if position else Decimal(0),
        orders=[*orders, (request.side, request.quantity, price)],
    )
    current = position.margin_blocked if position else Decimal(0)
    selling = sum(r for side, r, _ in orders if side == Side.SELL) if request.product == Product.CNC else 0
    kill = active_kill_switch(organisation_id=account.organisation_id, account_id=account.pk, user_id=_actor_id(actor))
    state = RiskState(
        today=today_ist(),
        kill_switch=None if reduces else kill,  # a kill switch halts new exposure, never an exit
        ltp=ltp,
        open_orders=_open_orders(account.pk, exclude_order),
        realised_today=funds.realised_today,
        mtm=_mtm(positions, {instrument.pk: ltp}),
        available_margin=funds.available,
        required_margin=proposed - current,
        reduces_position=reduces,
        delivery_held=net if request.product == Product.CNC else 0,
        delivery_selling=selling,
    )
    return state, _Group(position, orders)


def _new_event(order: Order, kind: str, *, before: str = "", message: str = "", **data) -> OrderEvent:
    """Return an unsaved OrderEvent for the order's current status."""
    return OrderEvent(
        order=order,
        kind=kind,
        from_status=before,
        to_status=order.status,
        message=message[:300],
        data={k: str(v) for k, v in data.items()},
    )


def _event(order: Order, kind: str, *, before: str = "", message: str = "", **data) -> None:
    _new_event(order, kind, before=before, message=message, **data).save()


def _reject_input(*, actor, account, request: OrderRequest, error, ip) -> None:
    """Audit a rejected order (nothing else is written) and count it."""
    metrics.orders_rejected_total.labels(rule=error.code).inc()
    if isinstance(error, RiskRejected):
        record_rejection(
            actor=_audit_actor(actor), error=error, payload=_payload(request, account_id=account.pk), ip=ip
        )
    else:
        audit_record(
            actor=_audit_actor(actor),
            action="rms.rejected",
            payload={"rule": error.code, "message": error.message, **_payload(request, account_id=account.pk)},
            ip=ip,
        )


def place_order(
    *,
    actor,
    account,
    request: OrderRequest,
    source: str,
    idempotency_key: str | None = None,
    slice_group: uuid.UUID | None = None,
    ip: str | None = None,
) -> Order:
    """Validate, risk-check, record and send one order; return it (its status after the broker answered).

    A repeated ``idempotency_key`` on the account returns the first order and sends nothing. Raises
    OrderInvalid (422) for a malformed request or unknown instrument and RiskRejected naming the rule
    (audited, nothing else written).
    """
    if idempotency_key:
        existing = Order.objects.filter(account_id=account.pk, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    started = time.perf_counter()
    try:
        _check_choices(request)
        _check_numbers(request)
        instrument = _INSTRUMENT.first(pk=request.instrument_id) if isinstance(request.instrument_id, int) else None
        if instrument is None:
            raise OrderInvalid(
                f"Instrument {request.instrument_id} was not found.",
                code="instrument_not_found",
                extra={"instrument_id": request.instrument_id},
            )
    except (OrderInvalid, RiskRejected) as error:
        _reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    adapter = get_adapter(account.broker)
    quote = get_quote(instrument.pk)
    ltp = quote.ltp if quote else None
    try:
        with transaction.atomic():
            # A new account's ledger opens at the broker's cash, asked only then.
            funds = lock_accounts([account.pk], lambda pk: adapter.funds(account_id=pk).cash)[account.pk]
            if idempotency_key:
                existing = Order.objects.filter(account_id=account.pk, idempotency_key=idempotency_key).first()
                if existing is not None:
                    return existing
            with _arithmetic_refused():
                state, group = _risk_state(
                    funds=funds,
                    account=account,
                    actor=actor,
                    instrument=instrument,
                    request=request,
                    adapter=adapter,
                    ltp=ltp,
                )
                check_pre_trade(
                    intent=_intent(account=account, actor=actor, instrument=instrument, request=request), state=state
                )
            order = Order(
                idempotency_key=idempotency_key or None,
                account=account,
                placed_by_id=_actor_id(actor),
                instrument=instrument,
                side=request.side,
                quantity=request.quantity,
                order_type=request.order_type,
                product=request.product,
                validity=request.validity,
                price=request.price,
                trigger_price=request.trigger_price,
                margin_price=request.price or request.trigger_price or ltp or Decimal(0),
                tag=request.tag,
                strategy=request.strategy,
                algo_id=request.algo_id or GENERIC_ALGO_ID,
                source=source,
                slice_group=slice_group,
                # An in-database broker is sent the order in this transaction: nothing can cancel it unsent.
                sent_at=timezone.now() if adapter.in_database else None,
            )
            prepared.insert([order])
            placed_event = _new_event(order, "placed", message=f"by {source}")
            if not adapter.in_database:  # otherwise written below with the broker's answer's events
                prepared.insert([placed_event])
            # Under the account lock the group is as read above, plus this order (its margin price as stored).
            stored_price = Decimal(order.margin_price).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            position = refresh_margin(
                adapter=adapter,
                funds=funds,
                instrument=instrument,
                product=request.product,
                position=group.position,
                orders=[*group.orders, (order.side, order.quantity, stored_price)],
                # An in-database broker's answer is applied below in this transaction, which then
                # writes the position and funds rows once, this block included.
                save=not adapter.in_database,
            )
            placed = {
                "actor": _audit_actor(actor),
                "action": "order.placed",
                "target": order,
                "payload": _payload(
                    request, account_id=account.pk, client_order_id=order.client_order_id, source=source
                ),
                "ip": ip,
            }
            push.order_changed_on_commit(order)
            if adapter.in_database:
                _send_in_transaction(
                    order,
                    instrument,
                    adapter,
                    locked=_Locked(
                        funds=funds,
                        order=order,
                        position=position,
                        group_orders=group.orders,
                        event=placed_event,
                        audit=placed,
                    ),
                )
            else:
                audit_record(**placed)
    except (RiskRejected, OrderInvalid) as error:
        _reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    except IntegrityError:
        # Two requests with one idempotency key raced past the first look-up: the constraint kept one.
        if idempotency_key:
            existing = Order.objects.filter(account_id=account.pk, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    metrics.orders_placed_total.labels(source=source).inc()
    if not adapter.in_database:
        _send(order, instrument)
    metrics.order_place_seconds.observe(time.perf_counter() - started)
    return order


@dataclass(frozen=True, slots=True)
class _Locked:
    """What the placing transaction holds when it applies an in-database broker's answer itself: the
    locked account ledger, the new order (locked by being uncommitted), the group's position and its
    other working orders as read under the lock, and the order's ``order.placed`` audit event (kept
    for last, with the fills' events, so the audit chain is locked only at the end). ``funds`` and
    ``position`` carry the placement's margin block unsaved; applying the answer writes them."""

    funds: object
    order: Order
    position: Position
    group_orders: list[tuple[str, int, Decimal]]
    event: OrderEvent  # the order's "placed" event, unsaved: written first with the answer's events
    audit: dict


def _send_in_transaction(order: Order, instrument: Instrument, adapter, *, locked: _Locked) -> None:
    """Place a new order through an in-database broker inside the placing transaction and apply its
    answer there: one transaction records the order, its acceptance and its immediate fills.
    Failures end as ``_send``'s do (REJECTED, or UNKNOWN and reconciled); ``order`` is current."""
    failure = None
    try:
        with transaction.atomic():  # a savepoint: a broker failing half-way leaves nothing of its own
            try:
                _result, updates = adapter.place_order_in_transaction(_broker_request(order, instrument))
            except BrokerUnavailable as error:
                failure = error  # what the exchange recorded before the answer was lost stays recorded
    except (BrokerRejected, BrokerSessionExpired) as error:
        failure = error
    except Exception as error:  # an adapter bug: the outcome is as unknown as after a timeout
        logger.exception("broker adapter failed placing %s", order.client_order_id)
        failure = error
    if failure is None:
        _apply_order_updates(updates, locked=locked)
        return
    locked.event.save()
    audit_record(**locked.audit)
    if isinstance(failure, BrokerRejected | BrokerSessionExpired):
        _settle(order, Status.REJECTED, message=failure.message, action="order.rejected", reason=failure.code)
    elif isinstance(failure, BrokerUnavailable):
        _settle(order, Status.UNKNOWN, message=failure.message, action="order.unknown", reason=failure.code)
        _schedule_reconcile(order)
    else:
        _settle(order, Status.UNKNOWN, message=str(failure)[:200], action="order.unknown", reason="adapter_error")
        _schedule_reconcile(order)
    order.refresh_from_db()


def _broker_request(order: Order, instrument: Instrument) -> BrokerOrderRequest:
    return BrokerOrderRequest(
        account_id=order.account_id,
        client_order_id=str(order.client_order_id),
        instrument_id=instrument.pk,
        exchange=instrument.exchange,
        tradingsymbol=instrument.tradingsymbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        product=order.product,
        validity=order.validity,
        instrument_type=instrument.instrument_type,
        tick_size=instrument.tick_size,
        price=order.price,
        trigger_price=order.trigger_price,
        algo_id=order.algo_id,
    )


def _send(order: Order, instrument: Instrument) -> None:
    """Send a committed PENDING order to its broker and record the outcome; ``order`` is refreshed."""
    # Claim the send: a cancel that got here first (kill switch) wins and the broker never sees the order.
    if not Order.objects.filter(pk=order.pk, status=Status.PENDING, sent_at__isnull=True).update(
        sent_at=timezone.now()
    ):
        order.refresh_from_db()
        return
    adapter = get_adapter(order.account.broker)
    request = _broker_request(order, instrument)
    try:
        result = adapter.place_order(request)
    except (BrokerRejected, BrokerSessionExpired) as error:
        _settle(order, Status.REJECTED, message=error.message, action="order.rejected", reason=error.code)
        order.refresh_from_db()
        return
    except BrokerUnavailable as error:
        _settle(order, Status.UNKNOWN, message=error.message, action="order.unknown", reason=error.code)
        _schedule_reconcile(order)
        order.refresh_from_db()
        return
    except Exception as error:  # an adapter bug: the outcome is as unknown as after a timeout
        logger.exception("broker adapter failed placing %s", order.client_order_id)
        _settle(order, Status.UNKNOWN, message=str(error)[:200], action="order.unknown", reason="adapter_error")
        _schedule_reconcile(order)
        order.refresh_from_db()
        return
    # The broker's update stream has usually applied the acceptance already (the paper exchange's
    # always has: it is read first); otherwise move the order on with conditional updates (one row or
    # none), which need no lock: margin does not change here.
    now = timezone.now()
    order.refresh_from_db()
    if order.status == Status.PENDING and can_move(Status.PENDING, result.status):
        if Order.objects.filter(pk=order.pk, status=Status.PENDING).update(
            status=result.status, broker_order_id=result.broker_order_id, updated_at=now
        ):
            order.status, order.broker_order_id, order.updated_at = result.status, result.broker_order_id, now
            _event(order, "ack", before=Status.PENDING, broker_order_id=result.broker_order_id)
            return
        order.refresh_from_db()  # the update stream got there in between
    if not order.broker_order_id and Order.objects.filter(pk=order.pk, broker_order_id="").update(
        broker_order_id=result.broker_order_id, updated_at=now
    ):
        order.broker_order_id, order.updated_at = result.broker_order_id, now


def _settle(order: Order, status: str, *, message: str, action: str, reason: str) -> None:
    """Move an order whose broker call failed to REJECTED or UNKNOWN, release margin, audit."""
    with transaction.atomic():
        funds = lock_accounts([order.account_id])[order.account_id]
        current = lock_orders([order.pk])[order.pk]
        if not can_move(current.status, status):
            return
        before = current.status
        current.status = status
        current.message = message[:300]
        current.save(update_fields=["status", "message", "updated_at"])
        _event(current, "broker_error", before=before, message=message, reason=reason)
        refresh_margin(
            adapter=get_adapter(current.account.broker),
            funds=funds,
            instrument=current.instrument,
            product=current.product,
        )
        audit_record(
            actor="system:orders",
            action=action,
            target=current,
            payload={"client_order_id": current.client_order_id, "reason": reason, "message": message},
        )
        push.order_changed_on_commit(current)
    metrics.order_status_total.labels(status=status).inc()


def _schedule_reconcile(order: Order) -> None:
    """Queue the order's reconciliation once the current transaction (if any) has committed."""
    from orders.tasks import reconcile_order_task

    def publish() -> None:
        try:
            reconcile_order_task.apply_async(args=[order.pk], countdown=5)
        except Exception:  # the periodic sweep will find it; never lose the order over a queue hiccup
            logger.warning("could not queue reconciliation of order %s", order.pk, exc_info=True)

    transaction.on_commit(publish)


def _apply_fill(order: Order, funds, fill, positions: dict) -> Trade | None:
    """Record one fill on the locked order; return the trade, or None when it is a repeat or would overfill.

    ``positions`` caches the group's Position row across the fills of one transaction (saved by the caller).
    """
    # A repeat of a fill already recorded on this order: the order has filled something then (the
    # same transaction recorded both). A first fill needs no look-up; the unique (account, trade id)
    # constraint still refuses a trade id the broker reused on another order.
    if (
        order.filled_quantity
        and Trade.objects.filter(account_id=order.account_id, broker_trade_id=fill.trade_id).exists()
    ):
        return None
    if fill.quantity <= 0 or order.filled_quantity + fill.quantity > order.quantity:
        metrics.overfill_prevented_total.inc()
        logger.error(
            "ignored fill %s of %s on order %s (filled %s of %s)",
            fill.trade_id,
            fill.quantity,
            order.client_order_id,
            order.filled_quantity,
            order.quantity,
        )
        return None
    trade = Trade(
        account_id=order.account_id,
        order=order,
        instrument=order.instrument,
        product=order.product,
        side=order.side,
        quantity=fill.quantity,
        price=fill.price,
        broker_trade_id=fill.trade_id,
        executed_at=fill.ts,
    )
    prepared.insert([trade])
    value = (order.average_price or Decimal(0)) * order.filled_quantity + fill.price * fill.quantity
    order.filled_quantity += fill.quantity
    order.average_price = (value / order.filled_quantity).quantize(Decimal("0.0001"))
    if "position" not in positions:
        # The group's row as the caller already read it under the account lock, or read (made) now.
        positions["position"] = (
            positions.get("read")
            or Position.objects.get_or_create(
                account_id=order.account_id, instrument_id=order.instrument_id, product=order.product
            )[0]
        )
    realised = _apply_to_position(positions["position"], order, fill.quantity, fill.price)
    if realised:
        funds.realised_pnl += realised
        funds.realised_today += realised
    return trade


def _apply_to_position(position: Position, order: Order, quantity: int, price: Decimal) -> Decimal:
    """Net a fill into the position (average-cost method; saved by the caller); return the P&L it realises."""
    signed = quantity if order.side == Side.BUY else -quantity
    net, average = position.net_quantity, position.average_price
    realised = Decimal(0)
    if net == 0 or (net > 0) == (signed > 0):
        position.average_price = ((abs(net) * average + quantity * price) / (abs(net) + quantity)).quantize(
            Decimal("0.0001")
        )
    else:
        closed = min(quantity, abs(net))
        realised = (price - average) * closed * (1 if net > 0 else -1)
        position.realised_pnl += realised
        if quantity > abs(net):
            position.average_price = price  # flipped: the rest opens at the fill price
        elif quantity == abs(net):
            position.average_price = Decimal(0)
    position.net_quantity = net + signed
    if order.side == Side.BUY:
        position.buy_quantity += quantity
        position.buy_value += quantity * price
    else:
        position.sell_quantity += quantity
        position.sell_value += quantity * price
    return realised


def apply_broker_update(update: BrokerUpdate) -> Order | None:
    """Apply one status change and/or fill from any broker; return the order (None if not ours).

    Idempotent: a fill already recorded (same broker trade id) is skipped, a fill that would take the
    order above its quantity is refused (logged and counted), and a status change not allowed by the
    state machine (anything out of FILLED, CANCELLED or REJECTED) is ignored and recorded as such.
    """
    return apply_broker_updates([update])[-1]


def apply_broker_updates(updates: list[BrokerUpdate]) -> list[Order | None]:
    """Apply updates in the order given; return the order each one concerned (None if not ours).

    Consecutive updates of one order (a paper order's acceptance and its immediate fills) are applied
    in one transaction, under one lock of the account and the order, each exactly as
    ``apply_broker_update`` would apply it alone: the same events, trades, audit events and state.
    """
    results: list[Order | None] = []
    i = 0
    while i < len(updates):
        j = i + 1
        key = (updates[i].account_id, updates[i].client_order_id)
        while j < len(updates) and (updates[j].account_id, updates[j].client_order_id) == key:
            j += 1
        order = _apply_order_updates(updates[i:j])
        results += [order] * (j - i)
        i = j
    return results


# What applying broker updates changes on an order and on its group's position.
_ORDER_UPDATE_FIELDS = ["status", "broker_order_id", "filled_quantity", "average_price", "message", "updated_at"]
_POSITION_UPDATE_FIELDS = [
    "net_quantity",
    "average_price",
    "realised_pnl",
    "buy_quantity",
    "buy_value",
    "sell_quantity",
    "sell_value",
    "margin_blocked",
    "updated_at",
]


def _apply_order_updates(updates: list[BrokerUpdate], locked: _Locked | None = None) -> Order | None:
    """Apply updates of one order in one transaction; return the order.

    With ``locked`` (an in-database broker's answer, applied by the placing transaction) the account
    and the order are those already locked, and the group's position and working orders those
    already read; ``locked.audit`` is recorded before the fills' audit events.
    """
    first = updates[0]
    moves: list[str] = []
    with transaction.atomic() if locked is None else nullcontext():
        if locked is None:
            funds = lock_accounts([first.account_id]).get(first.account_id)
            order = (
                Order.objects.select_for_update(of=("self",))
                .select_related("instrument", "account")
                .filter(account_id=first.account_id, client_order_id=first.client_order_id)
                .first()
            )
        else:
            funds, order = locked.funds, locked.order
            assert all(u.client_order_id == str(order.client_order_id) for u in updates), "updates of another order"
        if order is None or funds is None:
            logger.warning("broker update for unknown order %s", first.client_order_id)
            return None
        events: list[OrderEvent] = [] if locked is None else [locked.event]
        audits: list[tuple[str, dict]] = []
        trades: list[Trade] = []
        positions: dict = {} if locked is None else {"read": locked.position}
        changed = False
        realised_before = funds.realised_pnl
        for update in updates:
            before, broker_id = order.status, order.broker_order_id
            if update.broker_order_id and not order.broker_order_id:
                order.broker_order_id = update.broker_order_id
            trade = _apply_fill(order, funds, update.fill, positions) if update.fill is not None else None
            target = update.status
            if order.filled_quantity == order.quantity:
                target = Status.FILLED
            elif target == Status.FILLED:
                target = Status.PARTIALLY_FILLED if order.filled_quantity else order.status  # fills still to come
            elif target in {Status.OPEN, Status.TRIGGER_PENDING} and order.filled_quantity:
                target = Status.PARTIALLY_FILLED
            moved = target != before and can_move(before, target)
            if target != before and not moved:
                message = f"broker said {update.status}"
                events.append(_new_event(order, "ignored", before=before, message=message, requested=target))
            if not moved and trade is None and order.broker_order_id == broker_id:
                continue  # nothing changed (a repeat, an ack already applied, a modify confirmation)
            changed = True
            if moved:
                order.status = target
                moves.append(target)
                if update.message and target in {Status.REJECTED, Status.CANCELLED}:
                    order.message = update.message[:300]
            if trade is not None:
                trades.append(trade)
                events.append(
                    _new_event(
                        order,
                        "fill",
                        before=before,
                        quantity=trade.quantity,
                        price=trade.price,
                        trade_id=trade.broker_trade_id,
                    )
                )
                audits.append(
                    (
                        "order.filled",
                        {
                            "client_order_id": order.client_order_id,
                            "trade_id": trade.broker_trade_id,
                            "quantity": trade.quantity,
                            "price": trade.price,
                            "filled": order.filled_quantity,
                        },
                    )
                )
            elif moved:
                events.append(_new_event(order, "broker_update", before=before, message=update.message))
            if moved and order.status in {Status.CANCELLED, Status.REJECTED}:
                audits.append(
                    (
                        f"order.{order.status.lower()}",
                        {
                            "client_order_id": order.client_order_id,
                            "filled": order.filled_quantity,
                            "message": update.message,
                        },
                    )
                )
        if events:
            prepared.insert(events)
        if not changed:
            if locked is not None:  # the placement's margin block is still to be written
                prepared.update(locked.position, _POSITION_UPDATE_FIELDS)
                prepared.update(funds, ["margin_blocked", "realised_pnl", "realised_today", "updated_at"])
                audit_record(**locked.audit)
            return order
        prepared.update(order, _ORDER_UPDATE_FIELDS)
        position = positions.get("position") or (locked.position if locked is not None else None)
        margin_before = funds.margin_blocked
        if trades or order.status not in LIVE:
            # Margin moves only with a fill or when the order stops working (PENDING -> OPEN changes nothing).
            # The position and funds rows are written once below, with the margin as refreshed here.
            group_orders = None  # read them
            if locked is not None:  # the group's other working orders, as read under the lock, and this one
                group_orders = list(locked.group_orders)
                if order.status in LIVE:
                    price = Decimal(order.margin_price).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
                    group_orders.append((order.side, order.quantity - order.filled_quantity, price))
            position = refresh_margin(
                adapter=get_adapter(order.account.broker),
                funds=funds,
                instrument=order.instrument,
                product=order.product,
                position=position,
                orders=group_orders,
                save=position is None,
            )
        if locked is not None:  # the placement's margin block is unsaved too: write both rows once
            prepared.update(position, _POSITION_UPDATE_FIELDS)
            prepared.update(funds, ["margin_blocked", "realised_pnl", "realised_today", "updated_at"])
        elif "position" in positions:
            prepared.update(position, _POSITION_UPDATE_FIELDS)
            if funds.margin_blocked != margin_before:
                prepared.update(funds, ["margin_blocked", "realised_pnl", "realised_today", "updated_at"])
            elif funds.realised_pnl != realised_before:
                prepared.update(funds, ["realised_pnl", "realised_today", "updated_at"])
        elif funds.realised_pnl != realised_before:
            prepared.update(funds, ["realised_pnl", "realised_today", "updated_at"])
        # Audit events last: the audit chain's lock is held from here to commit, so keep that short.
        if locked is not None:
            audit_record(**locked.audit)
        for action, payload in audits:
            audit_record(actor="system:orders", action=action, target=order, payload=payload)
        if trades:
            for trade in trades:
                push.order_changed_on_commit(order, trade=trade)
        else:
            push.order_changed_on_commit(order)
    for status in moves:
        metrics.order_status_total.labels(status=status).inc()
    return order


def modify_order(
    *,
    actor,
    order: Order,
    quantity: int | None = None,
    price: Decimal | None = None,
    trigger_price: Decimal | None = None,
    order_type: str | None = None,
    ip: str | None = None,
) -> Order:
    """Change a working order; return it. The change passes the pre-trade rules like a new order.

    Raises OrderStateConflict (409) unless the order is OPEN, TRIGGER_PENDING or PARTIALLY_FILLED,
    RiskRejected for a change that breaks a rule, and BrokerRejected when the broker refuses (the
    order is then left as it was).
    """
    adapter = get_adapter(order.account.broker)
    with transaction.atomic():
        funds = lock_accounts([order.account_id])[order.account_id]
        current = lock_orders([order.pk])[order.pk]
        if current.status not in WORKING:
            raise OrderStateConflict(f"A {current.status} order cannot be modified.", extra={"status": current.status})
        old = {
            "quantity": current.quantity,
            "price": current.price,
            "trigger_price": current.trigger_price,
            "order_type": current.order_type,
            "margin_price": current.margin_price,
        }
        new_type = order_type or current.order_type
        request = OrderRequest(
            instrument_id=current.instrument_id,
            side=current.side,
            quantity=quantity if quantity is not None else current.quantity,
            order_type=new_type,
            product=current.product,
            validity=current.validity,
            price=price if price is not None else (current.price if new_type in {"LIMIT", "SL"} else None),
            trigger_price=trigger_price
            if trigger_price is not None
            else (current.trigger_price if new_type in {"SL", "SL-M"} else None),
            strategy=current.strategy,
        )
        if request.quantity <= current.filled_quantity:
            raise OrderInvalid(
                f"The new quantity must be above the filled quantity {current.filled_quantity}.",
                code="quantity_below_filled",
            )
        quote = get_quote(current.instrument_id)
        ltp = quote.ltp if quote else None
        try:
            _check_choices(request)  # an order type the column cannot hold would fail the save, not refuse
            _check_numbers(request)
            # The rules see the order as if placed afresh for its unfilled part.
            remaining_request = replace(request, quantity=request.quantity - current.filled_quantity)
            with _arithmetic_refused():
                state, _ = _risk_state(
                    funds=funds,
                    account=current.account,
                    actor=actor,
                    instrument=current.instrument,
                    request=remaining_request,
                    adapter=adapter,
                    ltp=ltp,
                    exclude_order=current,
                )
                # A stop that has triggered is working as a limit or market order: its trigger is spent.
                triggered = current.status != Status.TRIGGER_PENDING and current.order_type in STOP_TYPES
                intent = _intent(account=current.account, actor=actor, instrument=current.instrument, request=request)
                check_pre_trade(intent=intent, state=replace(state, stop_triggered=triggered))
        except (RiskRejected, OrderInvalid) as error:
            transaction.set_rollback(True)
            rejected = error
        else:
            rejected = None
            current.quantity, current.price = request.quantity, request.price
            current.trigger_price, current.order_type = request.trigger_price, request.order_type
            current.margin_price = request.price or request.trigger_price or ltp or current.margin_price
            current.save()
            _event(
                current,
                "modify",
                before=current.status,
                **{k: getattr(current, k) for k in ("quantity", "price", "trigger_price", "order_type")},
            )
            refresh_margin(adapter=adapter, funds=funds, instrument=current.instrument, product=current.product)
            audit_record(
                actor=_audit_actor(actor),
                action="order.modified",
                target=current,
                payload={
                    "client_order_id": current.client_order_id,
                    "old": old,
                    "new": {
                        "quantity": current.quantity,
                        "price": current.price,
                        "trigger_price": current.trigger_price,
                        "order_type": current.order_type,
                    },
                },
                ip=ip,
            )
    if rejected is not None:
        _reject_input(actor=actor, account=order.account, request=request, error=rejected, ip=ip)
        raise rejected
    try:
        adapter.modify_order(
            account_id=current.account_id,
            broker_order_id=current.broker_order_id,
            change=BrokerModifyRequest(
                quantity=current.quantity,
                price=current.price,
                trigger_price=current.trigger_price,
                order_type=current.order_type,
            ),
        )
    except BrokerRejected as error:
        _revert_modify(current, old, error, actor=actor, ip=ip)
        # Fills the exchange made above a reduced quantity were refused while the change was pending;
        # the broker's book has them, and reconciliation applies them (by trade id, so never twice).
        try:
            reconcile_order(order_id=current.pk)
        except BrokerUnavailable:
            _schedule_reconcile(current)
        raise
    except BrokerUnavailable as error:
        # The broker may or may not have the change: reconciliation compares with its order book (the
        # event keeps the order in the sweep until it has, should the queued task be lost).
        _event(current, BROKER_UNANSWERED, before=current.status, message=error.message, request="modify")
        _schedule_reconcile(current)
        raise
    current.refresh_from_db()
    return current


def _revert_modify(order: Order, old: dict, error, *, actor, ip) -> None:
    with transaction.atomic():
        funds = lock_accounts([order.account_id])[order.account_id]
        current = lock_orders([order.pk])[order.pk]
        for name, value in old.items():
            setattr(current, name, value)
        if current.quantity < current.filled_quantity:
            current.quantity = current.filled_quantity
        current.save()
        _event(current, "modify_rejected", before=current.status, message=error.message)
        refresh_margin(
            adapter=get_adapter(current.account.broker),
            funds=funds,
            instrument=current.instrument,
            product=current.product,
        )
        audit_record(
            actor=_audit_actor(actor),
            action="order.modify_rejected",
            target=current,
            payload={"client_order_id": current.client_order_id, "message": error.message},
            ip=ip,
        )


def cancel_order(*, actor, order: Order, ip: str | None = None) -> Order:
    """Cancel an order; return it. A PENDING order (not yet sent) is cancelled here; a working one is
    cancelled at the broker, whose confirmation arrives as a broker update.

    Raises OrderStateConflict (409) for an order already done or in UNKNOWN state, BrokerRejected when
    the broker refuses (it filled meanwhile) and BrokerUnavailable when it cannot be reached.
    """
    with transaction.atomic():
        funds = lock_accounts([order.account_id])[order.account_id]
        current = lock_orders([order.pk])[order.pk]
        if current.status in TERMINAL:
            raise OrderStateConflict(f"The order is already {current.status}.", extra={"status": current.status})
        if current.status == Status.UNKNOWN:
            raise OrderStateConflict(
                "The order's state is being reconciled with the broker; try again shortly.",
                extra={"status": current.status},
            )
        requested = {"client_order_id": current.client_order_id, "status": current.status}
        if current.status == Status.PENDING and current.sent_at is not None:
            raise OrderStateConflict(
                "The order is on its way to the broker; try again in a moment.", extra={"status": current.status}
            )
        if current.status == Status.PENDING:
            current.status = Status.CANCELLED
            current.message = "cancelled before it was sent"
            current.save(update_fields=["status", "message", "updated_at"])
            _event(current, "cancel", before=Status.PENDING)
            refresh_margin(
                adapter=get_adapter(current.account.broker),
                funds=funds,
                instrument=current.instrument,
                product=current.product,
            )
            audit_record(
                actor=_audit_actor(actor), action="order.cancel_requested", target=current, payload=requested, ip=ip
            )
            audit_record(
                actor=_audit_actor(actor),
                action="order.cancelled",
                target=current,
                payload={"client_order_id": current.client_order_id, "filled": 0},
                ip=ip,
            )
            push.order_changed_on_commit(current)
            return current
        _event(current, "cancel_request", before=current.status)
        audit_record(
            actor=_audit_actor(actor), action="order.cancel_requested", target=current, payload=requested, ip=ip
        )
    try:
        get_adapter(current.account.broker).cancel_order(
            account_id=current.account_id, broker_order_id=current.broker_order_id
        )
    except BrokerUnavailable as error:
        # The cancel may or may not have reached the broker: reconciliation reads its order book (the
        # event keeps the order in the sweep until it has, should the queued task be lost).
        _event(current, BROKER_UNANSWERED, before=current.status, message=error.message, request="cancel")
        _schedule_reconcile(current)
        raise
    current.refresh_from_db()
    return current


def cancel_all(
    *, actor, account, ip: str | None = None, product: str | None = None, placed_by_id: int | None = None
) -> list[Order]:
    """Cancel every live order of the account (optionally of one product, or placed by one user);
    return those cancelled.

    Orders that finish at the broker meanwhile are skipped; UNKNOWN ones are left to reconciliation.
    """
    orders = Order.objects.filter(account_id=account.pk, status__in=[Status.PENDING, *WORKING]).select_related(
        "account", "instrument"
    )
    if product:
        orders = orders.filter(product=product)
    if placed_by_id is not None:
        orders = orders.filter(placed_by_id=placed_by_id)
    done, in_flight = [], []
    for order in orders.order_by("pk"):
        try:
            done.append(cancel_order(actor=actor, order=order, ip=ip))
        except OrderStateConflict as error:
            if error.extra.get("status") == Status.PENDING:
                in_flight.append(order)  # being sent right now: cancel it once the broker has it
        except BrokerRejected:
            continue
        except BrokerUnavailable:
            logger.warning("could not cancel order %s: broker unavailable", order.pk)
    if in_flight:
        time.sleep(0.5)
        for order in in_flight:
            try:
                done.append(cancel_order(actor=actor, order=order, ip=ip))
            except (OrderStateConflict, BrokerRejected, BrokerUnavailable) as error:
                logger.warning("could not cancel in-flight order %s: %s", order.pk, error)
    return done


def square_off(
    *,
    actor,
    account,
    instrument_id: int,
    product: str,
    source: str = Source.SYSTEM,
    ip: str | None = None,
    idempotency_key: str | None = None,
) -> list[Order]:
    """Close a position with market orders (sliced at the freeze quantity); return them.

    Raises PositionNotFound when there is nothing to close. Exits pass the pre-trade check even under
    a kill switch or a daily-loss breach (they reduce exposure), but still obey the order-rate limit.
    """
    position = Position.objects.filter(account_id=account.pk, instrument_id=instrument_id, product=product).first()
    if position is None or position.net_quantity == 0:
        raise PositionNotFound(
            "There is no open position to close.", extra={"instrument_id": instrument_id, "product": product}
        )
    request = OrderRequest(
        instrument_id=instrument_id,
        side=Side.SELL if position.net_quantity > 0 else Side.BUY,
        quantity=abs(position.net_quantity),
        order_type=OrderType.MARKET,
        product=product,
        tag="square-off",
    )
    orders = place_sliced_order(
        actor=actor, account=account, request=request, source=source, idempotency_key=idempotency_key, ip=ip
    )
    for order in orders:
        audit_record(
            actor=_audit_actor(actor),
            action="position.squared_off",
            target=order,
            payload={
                "account_id": account.pk,
                "instrument_id": instrument_id,
                "product": product,
                "quantity": order.quantity,
            },
            ip=ip,
        )
    return orders


def slice_quantities(quantity: int, *, lot_size: int, freeze_quantity: int | None) -> list[int]:
    """Split ``quantity`` into exchange-legal parts: each at most the freeze quantity rounded down to a lot."""
    if not freeze_quantity or quantity <= freeze_quantity:
        return [quantity]
    largest = (freeze_quantity // lot_size) * lot_size
    if largest <= 0:
        raise OrderInvalid("The freeze quantity is below one lot.", code="freeze_below_lot")
    count = -(-quantity // largest)
    if count > MAX_SLICES:
        raise OrderInvalid(
            f"The order would need {count} slices of {largest}; at most {MAX_SLICES} are placed at once.",
            code="too_many_slices",
            extra={"slices": count, "max": MAX_SLICES, "field": "quantity"},
        )
    parts = [largest] * (quantity // largest)
    if quantity % largest:
        parts.append(quantity % largest)
    return parts


def place_sliced_order(
    *,
    actor,
    account,
    request: OrderRequest,
    source: str,
    idempotency_key: str | None = None,
    ip: str | None = None,
) -> list[Order]:
    """Place an order above the freeze quantity as child orders sharing a slice group; return them.

    The whole request is validated first (lot, tick, price); each child then passes the pre-trade
    check, including the orders-per-second limit. Children placed before a rejection stay placed.
    """
    instrument = Instrument.objects.filter(pk=request.instrument_id).first()
    if instrument is None:
        return [
            place_order(
                actor=actor, account=account, request=request, source=source, idempotency_key=idempotency_key, ip=ip
            )
        ]
    try:
        _check_choices(request)
        _check_numbers(request)
        validate_order_input(_intent(account=account, actor=actor, instrument=instrument, request=request), today_ist())
        parts = slice_quantities(
            request.quantity, lot_size=instrument.lot_size, freeze_quantity=instrument.freeze_quantity
        )
    except (RiskRejected, OrderInvalid) as error:
        _reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    if len(parts) == 1:
        return [
            place_order(
                actor=actor, account=account, request=request, source=source, idempotency_key=idempotency_key, ip=ip
            )
        ]
    group = uuid.uuid4()
    return [
        place_order(
            actor=actor,
            account=account,
            request=replace(request, quantity=part),
            source=source,
            idempotency_key=f"{idempotency_key}:{i}" if idempotency_key else None,
            slice_group=group,
            ip=ip,
        )
        for i, part in enumerate(parts)
    ]


@dataclass(frozen=True, slots=True)
class BasketResult:
    """One leg's outcome: the orders it placed, or the error that stopped it ({"code", "message", "extra"})."""

    orders: list[Order]
    error: dict | None


BASKET_ABANDONED_SECONDS = 120  # a basket still being placed after this long died with its process


def _leg_error(error: ApplicationError) -> dict:
    return {"code": error.code, "message": error.message, "extra": error.extra}


def check_basket(*, actor, account, requests: list[OrderRequest], ip: str | None = None) -> None:
    """Check every leg against everything that can be known before placing (its choices and numbers,
    its instrument, the instrument's own rules) and place nothing. Raises OrderInvalid
    ``basket_invalid`` naming each refused leg in ``extra["legs"]``; each refusal is audited as a
    single order's would be."""
    today = today_ist()
    refused = []
    for leg, request in enumerate(requests):
        try:
            _check_choices(request)
            _check_numbers(request)
            instrument = _INSTRUMENT.first(pk=request.instrument_id) if isinstance(request.instrument_id, int) else None
            if instrument is None:
                raise OrderInvalid(
                    f"Instrument {request.instrument_id} was not found.",
                    code="instrument_not_found",
                    extra={"instrument_id": request.instrument_id},
                )
            with _arithmetic_refused():
                validate_order_input(
                    _intent(account=account, actor=actor, instrument=instrument, request=request), today
                )
        except (OrderInvalid, RiskRejected) as error:
            _reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
            refused.append({"leg": leg, **_leg_error(error)})
    if refused:
        raise OrderInvalid(
            f"{len(refused)} of the basket's {len(requests)} legs cannot be placed; none was placed.",
            code="basket_invalid",
            extra={"legs": refused},
        )


def _basket_fingerprint(requests: list[OrderRequest]) -> str:
    legs = [{k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(r).items()} for r in requests]
    return hashlib.sha256(canonical_dumps(legs).encode()).hexdigest()


def _stored_outcome(basket: Basket) -> list[BasketResult]:
    ids = [pk for leg in basket.outcome for pk in leg["orders"]]
    orders = Order.objects.in_bulk(ids)
    return [BasketResult([orders[pk] for pk in leg["orders"]], leg["error"]) for leg in basket.outcome]


def _claim_basket(*, account, idempotency_key: str, fingerprint: str) -> tuple[Basket, list[BasketResult] | None]:
    """Return the basket row for this key and, when it was placed before, its outcome. Raises OrderInvalid
    when the key was used for other legs and OrderStateConflict while another request places it."""
    for _ in range(2):
        basket = Basket.objects.filter(account=account, idempotency_key=idempotency_key).first()
        if basket is None:
            try:
                with transaction.atomic():
                    return Basket.objects.create(
                        account=account, idempotency_key=idempotency_key, fingerprint=fingerprint
                    ), None
            except IntegrityError:
                continue  # another request claimed the key first: read what it claimed
        if basket.fingerprint != fingerprint:
            raise OrderInvalid(
                "This Idempotency-Key was used for a different basket.",
                code="idempotency_key_reused",
                extra={"idempotency_key": idempotency_key},
            )
        if basket.outcome is not None:
            return basket, _stored_outcome(basket)
        if (timezone.now() - basket.created_at).total_seconds() < BASKET_ABANDONED_SECONDS:
            raise OrderStateConflict(
                "This basket is being placed by another request; ask again in a moment.",
                code="basket_in_progress",
                extra={"idempotency_key": idempotency_key},
            )
        return basket, None  # abandoned mid-way: its legs' own keys return what was placed
    raise OrderStateConflict("This basket is being placed by another request.", code="basket_in_progress")


def place_basket(
    *,
    actor,
    account,
    requests: list[OrderRequest],
    source: str,
    idempotency_key: str | None = None,
    ip: str | None = None,
) -> list[BasketResult]:
    """Place several orders at once; return one result per leg (its orders, or the error that stopped it).

    Every leg is checked first (``check_basket``): if any cannot be placed, none is, and OrderInvalid
    ``basket_invalid`` names them. Then the legs are placed in order and are independent, as at the
    exchange: one leg's rejection (a risk rule, the rate limit, the broker) does not undo the others,
    and once a leg is placed no later error escapes as an exception, so the caller always learns
    which legs are live. With an ``idempotency_key`` the basket is idempotent as a whole: a repeat
    returns the first outcome, refused legs included, and places nothing.
    """
    basket = None
    if idempotency_key:
        basket, outcome = _claim_basket(
            account=account, idempotency_key=idempotency_key, fingerprint=_basket_fingerprint(requests)
        )
        if outcome is not None:
            return outcome
    try:
        check_basket(actor=actor, account=account, requests=requests, ip=ip)
    except OrderInvalid:
        if basket is not None:
            basket.delete()  # nothing was placed: the same key may be used again, corrected
        raise
    results = []
    for leg, request in enumerate(requests):
        key = f"{idempotency_key}:leg{leg}" if idempotency_key else None
        try:
            orders = place_sliced_order(
                actor=actor, account=account, request=request, source=source, idempotency_key=key, ip=ip
            )
            results.append(BasketResult(orders, None))
        except ApplicationError as error:
            results.append(BasketResult([], _leg_error(error)))
        except Exception:
            # A fault, not a refusal: the other legs may be live, so the caller must still get them.
            logger.exception("basket leg %s failed", leg)
            failed = ApplicationError("This leg failed on the server; it was not placed.", code="leg_failed")
            results.append(BasketResult([], _leg_error(failed)))
    if basket is not None:
        basket.outcome = [{"orders": [o.pk for o in r.orders], "error": r.error} for r in results]
        basket.save(update_fields=["outcome"])
    return results


_TERMS = ("quantity", "order_type", "price", "trigger_price")  # what a modification changes


def _terms(order: Order) -> tuple:
    return tuple(getattr(order, name) for name in _TERMS)


def _broker_terms(order: Order, found) -> dict:
    """Return the terms the broker holds for ``order`` that differ from ours: {name: (ours, broker's)}.
    A price counts only for the order types that carry one (a market order's protection price at the
    broker is not a term), and a term the broker does not report is taken to agree."""
    order_type = found.order_type or order.order_type
    price = order.price if found.price is None else found.price
    trigger = order.trigger_price if found.trigger_price is None else found.trigger_price
    theirs = {
        "quantity": found.quantity,
        "order_type": order_type,
        "price": price if order_type in {OrderType.LIMIT, OrderType.SL} else None,
        "trigger_price": trigger if order_type in {OrderType.SL, OrderType.SL_M} else None,
    }
    return {name: (getattr(order, name), value) for name, value in theirs.items() if getattr(order, name) != value}


def reconcile_order(*, order_id: int) -> Order:
    """Resolve an order whose broker call went unanswered from the broker's order book (looked up by
    the client order id tag); return it.

    If the broker has it, its fills and status are applied (nothing is re-sent, so no duplicate), and
    a working order takes the terms the broker holds (quantity, type, price, trigger): after a
    modification the broker never answered, the broker's book says whether it was applied. If the
    broker never received a new order, the order is REJECTED. Raises BrokerUnavailable if the broker
    still cannot be reached (the task retries).
    """
    order = Order.objects.select_related("account", "instrument").get(pk=order_id)
    if order.status in TERMINAL:
        return order
    asked = _terms(order)  # a modification made while the broker is asked is not undone by its old answer
    adapter = get_adapter(order.account.broker)
    found = adapter.order_by_client_id(account_id=order.account_id, client_order_id=str(order.client_order_id))
    if found is None:
        if order.status == Status.UNKNOWN:
            _settle(
                order,
                Status.REJECTED,
                message="The broker never received the order.",
                action="order.rejected",
                reason="not_at_broker",
            )
        order.refresh_from_db()
        return order
    now = timezone.now()
    for fill in found.fills:
        apply_broker_update(
            BrokerUpdate(
                account_id=order.account_id,
                client_order_id=found.client_order_id,
                broker_order_id=found.broker_order_id,
                status=found.status,
                ts=now,
                fill=fill,
            )
        )
    apply_broker_update(
        BrokerUpdate(
            account_id=order.account_id,
            client_order_id=found.client_order_id,
            broker_order_id=found.broker_order_id,
            status=found.status,
            ts=now,
            message=found.message,
        )
    )
    order.refresh_from_db()
    with transaction.atomic():
        funds = lock_accounts([order.account_id])[order.account_id]
        current = lock_orders([order.pk])[order.pk]
        if current.status == Status.UNKNOWN and can_move(Status.UNKNOWN, found.status):
            current.status = found.status
            current.save(update_fields=["status", "updated_at"])
        terms = {}
        if current.status in WORKING and _terms(current) == asked:
            terms = _broker_terms(current, found)
            if "quantity" in terms and terms["quantity"][1] <= current.filled_quantity:
                del terms["quantity"]  # never down to what has filled (the broker's fills were applied above)
        if terms:
            for name, (_ours, theirs) in terms.items():
                setattr(current, name, theirs)
            current.margin_price = current.price or current.trigger_price or current.margin_price
            current.save(update_fields=[*terms, "margin_price", "updated_at"])
            refresh_margin(adapter=adapter, funds=funds, instrument=current.instrument, product=current.product)
            push.order_changed_on_commit(current)
        _event(
            current,
            "reconcile",
            broker_status=found.status,
            broker_filled=found.filled_quantity,
            **{name: theirs for name, (_ours, theirs) in terms.items()},
        )
        payload = {
            "client_order_id": current.client_order_id,
            "broker_status": found.status,
            "status": current.status,
            "filled": current.filled_quantity,
        }
        if terms:
            payload["terms"] = {name: {"ours": ours, "broker": theirs} for name, (ours, theirs) in terms.items()}
        audit_record(actor="system:orders", action="order.reconciled", target=current, payload=payload)
    order.refresh_from_db()
    return order


# --- kill switch and scheduled square-offs --------------------------------------------------------


def kill_switch_engage(*, actor, scope: str, target_id: int | None, reason: str, ip: str | None = None) -> dict:
    """Engage a kill switch, then cancel open orders and square off positions in its scope.

    The switch is set while every affected account is locked, so an order either committed before (and
    is cancelled here) or is checked after (and rejected). Returns counts of what was done. Raises
    KillSwitchForbidden when ``actor`` may not engage it.
    """
    accounts = _accounts_in_scope(scope, target_id)
    with transaction.atomic():
        lock_accounts([a.pk for a in accounts])
        switch = kill_switch_set(actor=actor, scope=scope, target_id=target_id, reason=reason, ip=ip)
    # A user's switch stops that user's orders; positions belong to accounts and stay with their owners.
    user_id = target_id if scope == "user" else None
    return {"kill_switch": switch.key, **enforce_kill_switch(accounts=accounts, actor=actor, ip=ip, user_id=user_id)}


def _accounts_in_scope(scope: str, target_id: int | None) -> list:
    from brokers.models import BrokerAccount
    from rms.models import KillScope

    accounts = BrokerAccount.objects.all()
    if scope == KillScope.ORGANISATION:
        accounts = accounts.filter(organisation_id=target_id)
    elif scope == KillScope.ACCOUNT:
        accounts = accounts.filter(pk=target_id)
    elif scope == KillScope.USER:
        # the accounts on which this user has live orders
        account_ids = set(
            Order.objects.filter(placed_by_id=target_id, status__in=LIVE).values_list("account_id", flat=True)
        )
        accounts = accounts.filter(pk__in=account_ids)
    return list(accounts.order_by("pk"))


def enforce_kill_switch(*, accounts: list, actor, ip: str | None = None, user_id: int | None = None) -> dict:
    """Cancel every live order and square off every position of ``accounts`` (for a user's switch:
    only cancel that user's orders); return counts."""
    cancelled = squared = 0
    for account in accounts:
        cancelled += len(cancel_all(actor=actor, account=account, ip=ip, placed_by_id=user_id))
        if user_id is None:
            squared += len(square_off_all(actor=actor, account=account, ip=ip))
    return {"cancelled": cancelled, "squared_off": squared}


def square_off_all(*, actor, account, product: str | None = None, ip: str | None = None) -> list[Order]:
    """Square off every open position of the account (optionally one product); return the orders.

    A square-off refused by the order-rate limit is retried after the window passes (three times).
    """
    positions = Position.objects.filter(account_id=account.pk).exclude(net_quantity=0).order_by("pk")
    if product:
        positions = positions.filter(product=product)
    placed: list[Order] = []
    for position in positions:
        for attempt in range(4):
            try:
                placed += square_off(
                    actor=actor, account=account, instrument_id=position.instrument_id, product=position.product, ip=ip
                )
                break
            except RiskRejected as error:
                if error.rule != "orders_per_second" or attempt == 3:
                    logger.error("square-off of position %s refused: %s", position.pk, error.message)
                    break
                time.sleep(1.0)
            except PositionNotFound:
                break
    return placed


def square_off_intraday() -> dict:
    """Cancel working MIS orders and square off every MIS position (run at 15:15 IST); return counts."""
    from brokers.models import BrokerAccount

    account_ids = set(
        Position.objects.filter(product=Product.MIS).exclude(net_quantity=0).values_list("account_id", flat=True)
    )
    account_ids |= set(
        Order.objects.filter(product=Product.MIS, status__in=WORKING).values_list("account_id", flat=True)
    )
    cancelled = squared = 0
    for account in BrokerAccount.objects.filter(pk__in=account_ids).order_by("pk"):
        cancelled += len(cancel_all(actor=None, account=account, product=Product.MIS))
        squared += len(square_off_all(actor=None, account=account, product=Product.MIS))
    return {"accounts": len(account_ids), "cancelled": cancelled, "squared_off": squared}
