"""Changing a working order: ``modify_order`` (the new terms pass the pre-trade check like a new
order; recorded before the broker call and reverted, audited, if the broker refuses),
``cancel_order`` and ``cancel_all``. An unanswered call leaves the order for reconciliation."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from decimal import Decimal

from django.db import transaction

from audit.services import audit_record
from brokers.adapters.base import BrokerModifyRequest, BrokerNotSent, BrokerUnavailable
from brokers.adapters.registry import adapter_for
from marketdata.quotes import get_quote
from orders import push
from orders.errors import OrderInvalid, OrderStateConflict
from orders.locks import lock_accounts, lock_orders
from orders.margin import refresh_margin
from orders.models import BROKER_UNANSWERED, Order
from orders.services.broker_failures import schedule_reconcile
from orders.services.events import record_event
from orders.services.reconciliation import reconcile_order
from orders.services.requests import (
    OrderRequest,
    arithmetic_refused,
    audit_actor,
    check_choices,
    check_numbers,
    order_intent,
    reject_input,
    stop_price,
)
from orders.services.risk_state import risk_state
from orders.states import TERMINAL, WORKING, Status
from rms.errors import RiskRejected
from rms.services import STOP_TYPES, check_pre_trade

logger = logging.getLogger(__name__)


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
    RiskRejected for a change that breaks a rule, and BrokerNotSent (BrokerRejected and the others)
    when the broker refused it or was not reached (the order is then left as it was).
    """
    adapter = adapter_for(order.account)
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
            else (current.trigger_price if new_type in {"SL", "SL-M"} or current.variety == "co" else None),
            strategy=current.strategy,
            variety=current.variety,
            iceberg_legs=current.iceberg_legs,
            iceberg_quantity=current.iceberg_quantity,
        )
        if request.quantity <= current.filled_quantity:
            raise OrderInvalid(
                f"The new quantity must be above the filled quantity {current.filled_quantity}.",
                code="quantity_below_filled",
            )
        quote = get_quote(current.instrument_id)
        ltp = quote.ltp if quote else None
        rejected: RiskRejected | OrderInvalid | None
        try:
            check_choices(request)  # an order type the column cannot hold would fail the save, not refuse
            check_numbers(request)
            # The rules see the order as if placed afresh for its unfilled part.
            remaining_request = replace(request, quantity=request.quantity - current.filled_quantity)
            with arithmetic_refused():
                state, _ = risk_state(
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
                intent = order_intent(
                    account=current.account, actor=actor, instrument=current.instrument, request=request
                )
                check_pre_trade(intent=intent, state=replace(state, stop_triggered=triggered))
        except (RiskRejected, OrderInvalid) as error:
            transaction.set_rollback(True)
            rejected = error
        else:
            rejected = None
            current.quantity, current.price = request.quantity, request.price
            current.trigger_price, current.order_type = request.trigger_price, request.order_type
            current.margin_price = request.price or stop_price(request) or ltp or current.margin_price
            current.save()
            record_event(
                current,
                "modify",
                before=current.status,
                **{k: getattr(current, k) for k in ("quantity", "price", "trigger_price", "order_type")},
            )
            refresh_margin(adapter=adapter, funds=funds, instrument=current.instrument, product=current.product)
            audit_record(
                actor=audit_actor(actor),
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
        reject_input(actor=actor, account=order.account, request=request, error=rejected, ip=ip)
        raise rejected
    try:
        adapter.modify_order(
            broker_order_id=current.broker_order_id,
            change=BrokerModifyRequest(
                quantity=current.quantity,
                price=current.price,
                trigger_price=current.trigger_price,
                order_type=current.order_type,
            ),
            variety=current.variety,
        )
    except BrokerNotSent as error:  # refused, or never sent: the order keeps its old terms
        _revert_modify(current, old, error, actor=actor, ip=ip)
        # Fills the exchange made above a reduced quantity were refused while the change was pending;
        # the broker's book has them, and reconciliation applies them (by trade id, so never twice).
        try:
            reconcile_order(order_id=current.pk)
        except BrokerUnavailable:
            schedule_reconcile(current)
        raise
    except BrokerUnavailable as error:
        # The broker may or may not have the change: reconciliation compares with its order book (the
        # event keeps the order in the sweep until it has, should the queued task be lost).
        record_event(current, BROKER_UNANSWERED, before=current.status, message=error.message, request="modify")
        schedule_reconcile(current)
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
        record_event(current, "modify_rejected", before=current.status, message=error.message)
        refresh_margin(
            adapter=adapter_for(current.account),
            funds=funds,
            instrument=current.instrument,
            product=current.product,
        )
        audit_record(
            actor=audit_actor(actor),
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
            record_event(current, "cancel", before=Status.PENDING)
            refresh_margin(
                adapter=adapter_for(current.account),
                funds=funds,
                instrument=current.instrument,
                product=current.product,
            )
            audit_record(
                actor=audit_actor(actor), action="order.cancel_requested", target=current, payload=requested, ip=ip
            )
            audit_record(
                actor=audit_actor(actor),
                action="order.cancelled",
                target=current,
                payload={"client_order_id": current.client_order_id, "filled": 0},
                ip=ip,
            )
            push.order_changed_on_commit(current)
            return current
        record_event(current, "cancel_request", before=current.status)
        audit_record(
            actor=audit_actor(actor), action="order.cancel_requested", target=current, payload=requested, ip=ip
        )
    try:
        adapter_for(current.account).cancel_order(broker_order_id=current.broker_order_id, variety=current.variety)
    except BrokerUnavailable as error:
        # The cancel may or may not have reached the broker: reconciliation reads its order book (the
        # event keeps the order in the sweep until it has, should the queued task be lost).
        record_event(current, BROKER_UNANSWERED, before=current.status, message=error.message, request="cancel")
        schedule_reconcile(current)
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
        except BrokerNotSent:
            continue
        except BrokerUnavailable:
            logger.warning("could not cancel order %s: broker unavailable", order.pk)
    if in_flight:
        time.sleep(0.5)
        for order in in_flight:
            try:
                done.append(cancel_order(actor=actor, order=order, ip=ip))
            except (OrderStateConflict, BrokerNotSent, BrokerUnavailable) as error:
                logger.warning("could not cancel in-flight order %s: %s", order.pk, error)
    return done
