"""Reconciliation: an order whose broker call went unanswered (UNKNOWN, or a modify or cancel never
answered) is resolved from the broker's order book, looked up by its broker tag. Queued by
``broker_failures.schedule_reconcile`` and by the minute's sweep (orders.tasks). ``reconcile_account``
does it for every working order of one account, after a broker's order stream was interrupted (the
Kite ticker sends ``orders.tasks.reconcile_account_task`` by name when it reconnects)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from brokers.adapters.base import BrokerOrder, BrokerUpdate
from brokers.adapters.registry import adapter_for
from orders import push
from orders.locks import lock_accounts, lock_orders
from orders.margin import refresh_margin
from orders.models import Order, OrderType
from orders.services.broker_failures import settle
from orders.services.broker_updates import apply_broker_update
from orders.services.events import record_event
from orders.states import TERMINAL, WORKING, Status, can_move

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
    its broker tag); return it.

    If the broker has it, its fills and status are applied (nothing is re-sent, so no duplicate), and
    a working order takes the terms the broker holds (quantity, type, price, trigger): after a
    modification the broker never answered, the broker's book says whether it was applied. If the
    broker never received a new order, the order is REJECTED. Raises BrokerUnavailable if the broker
    still cannot be reached (the task retries).
    """
    order = Order.objects.select_related("account", "instrument").get(pk=order_id)
    if order.status in TERMINAL:
        return order
    adapter = adapter_for(order.account)
    return _reconcile(order, adapter, adapter.order_by_tag)


def _reconcile(order: Order, adapter, find: Callable[[str], BrokerOrder | None]) -> Order:
    """Reconcile ``order`` from what ``find`` (its broker tag -> the broker's order, or None) says."""
    asked = _terms(order)  # a modification made while the broker is asked is not undone by its old answer
    found = find(order.broker_tag)
    if found is None:
        if order.status == Status.UNKNOWN:
            settle(
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
                tag=found.tag,
                broker_order_id=found.broker_order_id,
                status=found.status,
                ts=now,
                fill=fill,
            )
        )
    apply_broker_update(
        BrokerUpdate(
            account_id=order.account_id,
            tag=found.tag,
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
        record_event(
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


def reconcile_account(*, account_id: int) -> dict[str, int]:
    """Reconcile every working or UNKNOWN order of the account from the broker's order book, as
    ``reconcile_order`` does each (the updates its stream missed while it was down); return how many
    orders ended in each status. The book is read once for the account (``adapter.order_book()``),
    not once per order. Raises BrokerUnavailable (nothing changed) when the book cannot be read;
    reconciling again changes nothing."""
    orders = list(
        Order.objects.filter(account_id=account_id, status__in=[*WORKING, Status.UNKNOWN])
        .select_related("account", "instrument")
        .order_by("pk")
    )
    if not orders:
        return {}
    adapter = adapter_for(orders[0].account)
    book = {found.tag: found for found in adapter.order_book() if found.tag}
    outcome: dict[str, int] = {}
    for order in orders:
        order.refresh_from_db(fields=["status"])  # the update stream may have settled it meanwhile
        status = order.status if order.status in TERMINAL else _reconcile(order, adapter, book.get).status
        outcome[status] = outcome.get(status, 0) + 1
    return outcome
