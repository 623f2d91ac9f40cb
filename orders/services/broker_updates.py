"""Broker updates: status changes and fills from any broker, applied to the order, its trades, its
position (``orders.positions``), the account's realised P&L and margin, the audit trail and the
pushed rows. Consecutive updates of one order are applied in one transaction.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction

from audit.services import audit_record
from brokers.adapters.base import BrokerUpdate
from brokers.adapters.registry import get_adapter
from infra import prepared
from orders import metrics, push
from orders.locks import lock_accounts
from orders.margin import refresh_margin
from orders.models import Funds, Order, OrderEvent, Position, Trade
from orders.positions import PositionFigures, apply_fill, average_price
from orders.services.events import new_event
from orders.states import LIVE, Status, can_move

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Locked:
    """What the placing transaction holds when it applies an in-database broker's answer itself: the
    locked account ledger, the new order (locked by being uncommitted), the group's position and its
    other working orders as read under the lock, and the order's ``order.placed`` audit event (kept
    for last, with the fills' events, so the audit chain is locked only at the end). ``funds`` and
    ``position`` carry the placement's margin block unsaved; applying the answer writes them."""

    funds: Funds
    order: Order
    position: Position
    group_orders: list[tuple[str, int, Decimal]]
    event: OrderEvent  # the order's "placed" event, unsaved: written first with the answer's events
    audit: dict


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
    order.average_price = average_price(
        order.filled_quantity, order.average_price or Decimal(0), fill.quantity, fill.price
    )
    order.filled_quantity += fill.quantity
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
        key = (updates[i].account_id, updates[i].client_order_id)
        while j < len(updates) and (updates[j].account_id, updates[j].client_order_id) == key:
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


def apply_order_updates(updates: list[BrokerUpdate], locked: Locked | None = None) -> Order | None:
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
            prepared.update(position, _POSITION_UPDATE_FIELDS)  # type: ignore[arg-type]  # locked.position at least
            prepared.update(funds, ["margin_blocked", "realised_pnl", "realised_today", "updated_at"])
        elif "position" in positions:
            prepared.update(position, _POSITION_UPDATE_FIELDS)  # type: ignore[arg-type]  # the position read above
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
