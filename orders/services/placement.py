"""Placing one order: instrument lookup -> ``rms.services.check_pre_trade`` under the account lock
(``risk_state``) -> one transaction for the order row, its event, the margin block and the audit event
-> the broker call outside the transaction -> status. A timeout leaves the order UNKNOWN for
reconciliation. A broker declaring ``places_in_transaction`` (the paper exchange, whose book is in
this database) is sent the order inside the placing transaction instead, and its answer applied
there; this module is the one place that capability is honoured.

Not to be called inside an open transaction: a broker outside this database must only ever see
committed orders.
"""

from __future__ import annotations

import logging
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.adapters.base import (
    BrokerNotSent,
    BrokerOrderRequest,
    BrokerSessionExpired,
    BrokerUnavailable,
    BrokerUpdate,
)
from brokers.adapters.registry import adapter_for
from infra import prepared
from marketdata.errors import QuotesUnavailable
from marketdata.models import Instrument
from marketdata.quotes import get_quote
from orders import metrics, push
from orders.errors import OrderInvalid
from orders.locks import lock_accounts
from orders.margin import refresh_margin
from orders.models import Order
from orders.services.broker_failures import schedule_reconcile, settle
from orders.services.broker_updates import Held, apply_held_updates
from orders.services.events import new_event, record_event
from orders.services.requests import (
    GENERIC_ALGO_ID,
    OrderRequest,
    actor_id,
    arithmetic_refused,
    audit_actor,
    check_capabilities,
    check_choices,
    check_numbers,
    instrument_of,
    order_intent,
    reject_input,
    request_payload,
    stop_price,
)
from orders.services.risk_state import risk_state
from orders.states import Status, can_move
from rms.errors import RiskRejected
from rms.services import check_pre_trade

logger = logging.getLogger(__name__)


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
    OrderInvalid (422) for a malformed request or unknown instrument, RiskRejected naming the rule and
    QuotesUnavailable (503) while the quote store cannot be reached (each audited, nothing else written).
    """
    if idempotency_key:
        existing = Order.objects.filter(account_id=account.pk, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    started = time.perf_counter()
    try:
        check_choices(request)
        check_numbers(request)
        instrument = instrument_of(request)
        adapter = adapter_for(account)
        if not adapter.signed_in:  # refused before anything is written or sent
            raise BrokerSessionExpired(
                f"{account.label} is not signed in to its broker: sign in again, then retry. Nothing was sent.",
                extra={"account_id": account.pk},
            )
        check_capabilities(adapter.capabilities, request, instrument)
        # The quote store unreachable (Redis down) refuses the order (503): never judged without a price.
        quote = get_quote(instrument.pk)
    except (OrderInvalid, RiskRejected, BrokerSessionExpired, QuotesUnavailable) as error:
        reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    # The one place the order system honours a broker's in-transaction placement (its book is in this
    # database): the order is sent, and its answer applied, inside the transaction that records it.
    in_transaction = adapter.capabilities.places_in_transaction
    ltp = quote.ltp if quote else None
    try:
        with transaction.atomic():
            # A new account's ledger opens at the broker's cash, asked only then.
            funds = lock_accounts([account.pk], lambda pk: adapter.funds().cash)[account.pk]
            if idempotency_key:
                existing = Order.objects.filter(account_id=account.pk, idempotency_key=idempotency_key).first()
                if existing is not None:
                    return existing
            with arithmetic_refused():
                state, group = risk_state(
                    funds=funds,
                    account=account,
                    actor=actor,
                    instrument=instrument,
                    request=request,
                    adapter=adapter,
                    ltp=ltp,
                )
                check_pre_trade(
                    intent=order_intent(account=account, actor=actor, instrument=instrument, request=request),
                    state=state,
                )
            order = Order(
                idempotency_key=idempotency_key or None,
                account=account,
                placed_by_id=actor_id(actor),
                instrument=instrument,
                side=request.side,
                quantity=request.quantity,
                order_type=request.order_type,
                product=request.product,
                validity=request.validity,
                price=request.price,
                trigger_price=request.trigger_price,
                variety=request.variety,
                iceberg_legs=request.iceberg_legs,
                iceberg_quantity=request.iceberg_quantity,
                margin_price=request.price or stop_price(request) or ltp or Decimal(0),
                tag=request.tag,
                strategy=request.strategy,
                algo_id=request.algo_id or GENERIC_ALGO_ID,
                source=source,
                slice_group=slice_group,
                # Sent in this transaction: nothing can cancel it unsent.
                sent_at=timezone.now() if in_transaction else None,
            )
            prepared.insert([order])
            # Under the account lock the group is as read above, plus this order (its margin price as stored).
            stored_price = Decimal(order.margin_price).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            position = refresh_margin(
                adapter=adapter,
                funds=funds,
                instrument=instrument,
                product=request.product,
                position=group.position,
                orders=[*group.orders, (order.side, order.quantity, stored_price)],
                save=False,  # written with the order's other writes (``Held``)
            )
            held = Held(
                funds=funds,
                order=order,
                position=position,
                others=group.orders,
                events=[new_event(order, "placed", message=f"by {source}")],
                audits=[
                    {
                        "actor": audit_actor(actor),
                        "action": "order.placed",
                        "target": order,
                        "payload": request_payload(
                            request, account_id=account.pk, client_order_id=order.client_order_id, source=source
                        ),
                        "ip": ip,
                    }
                ],
                rows_due=True,
            )
            push.order_changed_on_commit(order)
            # The broker's answer, when it comes in this transaction, is applied with the held writes.
            updates = _send_in_transaction(held, instrument, adapter) if in_transaction else []
            apply_held_updates(held, updates)
    except (RiskRejected, OrderInvalid, BrokerNotSent) as error:  # BrokerNotSent: the opening balance's read
        reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    except IntegrityError:
        # Two requests with one idempotency key raced past the first look-up: the constraint kept one.
        if idempotency_key:
            existing = Order.objects.filter(account_id=account.pk, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    metrics.orders_placed_total.labels(source=source).inc()
    if not in_transaction:
        _send(order, instrument, adapter)
    metrics.order_place_seconds.observe(time.perf_counter() - started)
    return order


def _send_in_transaction(held: Held, instrument: Instrument, adapter) -> list[BrokerUpdate]:
    """Place the held new order through a broker that places inside the placing transaction; return
    its answer's updates, for the caller to apply. Failures end as ``_send``'s do (REJECTED, or
    UNKNOWN and reconciled), after the held writes are made; ``held.order`` is current then."""
    order = held.order
    failure: Exception | None = None
    try:
        with transaction.atomic():  # a savepoint: a broker failing half-way leaves nothing of its own
            try:
                _result, updates = adapter.place_order_in_transaction(_broker_request(order, instrument))
            except BrokerUnavailable as error:
                failure = error  # what the exchange recorded before the answer was lost stays recorded
    except BrokerNotSent as error:
        failure = error
    except Exception as error:  # an adapter bug: the outcome is as unknown as after a timeout
        logger.exception("broker adapter failed placing %s", order.client_order_id)
        failure = error
    if failure is None:
        return updates
    apply_held_updates(held, [])
    if isinstance(failure, BrokerNotSent):
        settle(order, Status.REJECTED, message=failure.message, action="order.rejected", reason=failure.code)
    elif isinstance(failure, BrokerUnavailable):
        settle(order, Status.UNKNOWN, message=failure.message, action="order.unknown", reason=failure.code)
        schedule_reconcile(order)
    else:
        settle(order, Status.UNKNOWN, message=str(failure)[:200], action="order.unknown", reason="adapter_error")
        schedule_reconcile(order)
    order.refresh_from_db()
    return []


def _broker_request(order: Order, instrument: Instrument) -> BrokerOrderRequest:
    return BrokerOrderRequest(
        tag=order.broker_tag,
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
        variety=order.variety,
        iceberg_legs=order.iceberg_legs,
        iceberg_quantity=order.iceberg_quantity,
    )


def _send(order: Order, instrument: Instrument, adapter) -> None:
    """Send a committed PENDING order through ``adapter`` (the one its placing checked the session of:
    the session and credentials are read and unsealed once an order) and record the outcome; ``order``
    is refreshed. A session that lapsed in between is the broker's token error: rejected, not sent."""
    # Claim the send: a cancel that got here first (kill switch) wins and the broker never sees the order.
    if not Order.objects.filter(pk=order.pk, status=Status.PENDING, sent_at__isnull=True).update(
        sent_at=timezone.now()
    ):
        order.refresh_from_db()
        return
    request = _broker_request(order, instrument)
    try:
        result = adapter.place_order(request)
    except BrokerNotSent as error:
        settle(order, Status.REJECTED, message=error.message, action="order.rejected", reason=error.code)
        order.refresh_from_db()
        return
    except BrokerUnavailable as error:
        settle(order, Status.UNKNOWN, message=error.message, action="order.unknown", reason=error.code)
        schedule_reconcile(order)
        order.refresh_from_db()
        return
    except Exception as error:  # an adapter bug: the outcome is as unknown as after a timeout
        logger.exception("broker adapter failed placing %s", order.client_order_id)
        settle(order, Status.UNKNOWN, message=str(error)[:200], action="order.unknown", reason="adapter_error")
        schedule_reconcile(order)
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
            record_event(order, "ack", before=Status.PENDING, broker_order_id=result.broker_order_id)
            push.order_changed_on_commit(order)  # the row the trader sees leaves Pending
            return
        order.refresh_from_db()  # the update stream got there in between
    if not order.broker_order_id and Order.objects.filter(pk=order.pk, broker_order_id="").update(
        broker_order_id=result.broker_order_id, updated_at=now
    ):
        order.broker_order_id, order.updated_at = result.broker_order_id, now
