"""Broker updates: status changes and fills from any broker, applied to the order, its trades, its
position (``orders.positions``), the account's realised P&L and margin, the audit trail and the
pushed rows. Consecutive updates of one order are applied in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from audit.services import audit_record
from brokers.adapters.base import BrokerUpdate
from brokers.adapters.registry import adapter_for
from infra import prepared
from orders import metrics, push
from orders.locks import lock_accounts, lock_order_by_tag
from orders.margin import refresh_margin, working_orders
from orders.models import FILLS_TO_FETCH, Funds, Order, OrderEvent, Position, Trade
from orders.positions import PositionFigures, apply_fill, average_price
from orders.services.broker_failures import schedule_reconcile
from orders.services.events import new_event
from orders.states import LIVE, Status, can_move

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Held:
    """One order and its account as held by the transaction applying the broker's updates to them.

    ``funds`` is the account's ledger, locked; ``order`` the order, locked (or new in this
    transaction). ``position`` and ``others`` are the order's group (its position row, its other
    working orders as (side, remaining, margin price)) when the transaction has already read them
    under the lock, else None: they are read when needed. ``events``, ``audits`` and ``rows_due``
    are writes the transaction still owes from before the updates (the placement's ``placed`` event,
    its ``order.placed`` audit event, its margin block on ``funds`` and ``position``): they are made
    with the updates' own, the events first and the audit events before the updates' ones.
    """

    funds: Funds
    order: Order
    position: Position | None = None
    others: list[tuple[str, int, Decimal]] | None = None
    events: list[OrderEvent] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)
    rows_due: bool = False

    def group_position(self) -> Position:
        if self.position is None:
            order = self.order
            self.position = Position.objects.get_or_create(
                account_id=order.account_id, instrument_id=order.instrument_id, product=order.product
            )[0]
        return self.position

    def working_orders(self) -> list[tuple[str, int, Decimal]]:
        """The group's working orders now: the others as read, and this order while it works."""
        order = self.order
        if self.others is None:
            self.others = working_orders(
                account_id=order.account_id,
                instrument_id=order.instrument_id,
                product=order.product,
                exclude_pk=order.pk,
            )
        if order.status not in LIVE:
            return self.others
        price = Decimal(order.margin_price).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        return [*self.others, (order.side, order.quantity - order.filled_quantity, price)]


def _apply_fill(held: Held, fill) -> Trade | None:
    """Record one fill on the held order and its group's position (saved by the caller); return the
    trade, or None when it is a repeat or would overfill."""
    order, funds = held.order, held.funds
    exchange = fill.exchange or order.instrument.exchange
    # A repeat of a fill already recorded on this order: the order has filled something then (the
    # same transaction recorded both). A first fill needs no look-up; the unique (account, trade id)
    # constraint still refuses a trade id the broker reused on another order.
    if (
        order.filled_quantity
        and Trade.objects.filter(account_id=order.account_id, exchange=exchange, broker_trade_id=fill.trade_id).exists()
    ):
        return None
    if fill.quantity <= 0 or order.filled_quantity + fill.quantity > order.quantity:
        metrics.overfill_prevented_total.inc()
        logger.error(
            "ignored fill %s of %s on order %s (filled %s of %s)",
            fill.trade_id,
            fill.quantity,
            order.broker_tag,
            order.filled_quantity,
            order.quantity,
        )
        return None
    trade = Trade(
        account_id=order.account_id,
        exchange=exchange,
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
    order.average_price = average_price(
        order.filled_quantity, order.average_price or Decimal(0), fill.quantity, fill.price
    )
    order.filled_quantity += fill.quantity
    realised = _apply_to_position(held.group_position(), order, fill.quantity, fill.price)
    if realised:
        funds.realised_pnl += realised
        funds.realised_today += realised
    return trade


def _apply_to_position(position: Position, order: Order, quantity: int, price: Decimal) -> Decimal:
    """Net a fill into the position (orders.positions; saved by the caller); return the P&L it realises."""
    figures, realised = apply_fill(
        PositionFigures(
            position.net_quantity,
            position.average_price,
            position.realised_pnl,
            position.buy_quantity,
            position.buy_value,
            position.sell_quantity,
            position.sell_value,
        ),
        side=order.side,
        quantity=quantity,
        price=price,
    )
    position.net_quantity, position.average_price, position.realised_pnl = (
        figures.net_quantity,
        figures.average_price,
        figures.realised_pnl,
    )
    position.buy_quantity, position.buy_value = figures.buy_quantity, figures.buy_value
    position.sell_quantity, position.sell_value = figures.sell_quantity, figures.sell_value
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
        key = (updates[i].account_id, updates[i].tag)
        while j < len(updates) and (updates[j].account_id, updates[j].tag) == key:
            j += 1
        order = apply_order_updates(updates[i:j])
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


def apply_order_updates(updates: list[BrokerUpdate]) -> Order | None:
    """Apply updates of one order in one transaction, under the lock of its account and itself;
    return the order (None if not ours)."""
    first = updates[0]
    with transaction.atomic():
        funds = lock_accounts([first.account_id]).get(first.account_id)
        order = lock_order_by_tag(first.account_id, first.tag)
        if order is None or funds is None:
            logger.warning("broker update for unknown order tag %s", first.tag)
            return None
        return apply_held_updates(Held(funds=funds, order=order), updates)


def apply_held_updates(held: Held, updates: list[BrokerUpdate]) -> Order:
    """Apply updates of the held order inside the caller's transaction, with the writes it still
    owes (``Held``); return the order."""
    order, funds = held.order, held.funds
    assert all(u.tag == order.broker_tag for u in updates), "updates of another order"
    events = held.events
    audits: list[tuple[str, dict]] = []
    trades: list[Trade] = []
    moves: list[str] = []
    changed = False
    realised_before, margin_before = funds.realised_pnl, funds.margin_blocked
    for update in updates:
        before, broker_id = order.status, order.broker_order_id
        if update.broker_order_id and not order.broker_order_id:
            order.broker_order_id = update.broker_order_id
        trade = _apply_fill(held, update.fill) if update.fill is not None else None
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
            events.append(new_event(order, "ignored", before=before, message=message, requested=target))
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
                new_event(
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
            events.append(new_event(order, "broker_update", before=before, message=update.message))
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
    reported = max((u.filled_quantity or 0 for u in updates if u.fill is None), default=0)
    if reported > order.filled_quantity:  # fills the broker reported without their trades: fetch them
        message = f"broker reports {reported} filled, {order.filled_quantity} recorded"
        events.append(new_event(order, FILLS_TO_FETCH, before=order.status, message=message))
        schedule_reconcile(order)
    if events:
        prepared.insert(events)
    position_changed = bool(trades) or held.rows_due
    if changed:
        prepared.update(order, _ORDER_UPDATE_FIELDS)
        if trades or order.status not in LIVE:
            # Margin moves only with a fill or when the order stops working (PENDING -> OPEN changes nothing).
            position = held.group_position()
            block_before = position.margin_blocked
            refresh_margin(
                adapter=adapter_for(order.account),
                funds=funds,
                instrument=order.instrument,
                product=order.product,
                position=position,
                orders=held.working_orders(),
                save=False,  # written once below, with the fills' changes
            )
            position_changed = position_changed or position.margin_blocked != block_before
    # The position and the ledger are written once, with everything that changed them.
    if position_changed and held.position is not None:
        prepared.update(held.position, _POSITION_UPDATE_FIELDS)
    if held.rows_due or funds.margin_blocked != margin_before or funds.realised_pnl != realised_before:
        prepared.update(funds, ["margin_blocked", "realised_pnl", "realised_today", "updated_at"])
    # Audit events last: the audit chain's lock is held from here to commit, so keep that short.
    for audit in held.audits:
        audit_record(**audit)
    for action, payload in audits:
        audit_record(actor="system:orders", action=action, target=order, payload=payload)
    if trades:
        for trade in trades:
            push.order_changed_on_commit(order, trade=trade)
    elif changed:
        push.order_changed_on_commit(order)
    held.events, held.audits, held.rows_due = [], [], False  # owed no more
    for status in moves:
        metrics.order_status_total.labels(status=status).inc()
    return order
