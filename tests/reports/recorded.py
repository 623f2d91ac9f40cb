"""Trades recorded at chosen IST times, as the order system records fills: an order (filled) and its
trade. The reports read only these rows, so a test sets the days, prices and products it needs."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from orders.models import Order, Trade
from orders.reports.periods import IST

_ids = itertools.count(1)


def ist(text: str) -> datetime:
    """``"2026-03-02 10:15"`` as an aware IST datetime."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=IST)


def record(account, instrument, side: str, quantity: int, price, at: str, *, product: str = "MIS", order=None) -> Trade:
    """Record one fill (of ``order``, else of a new filled order) executed at IST ``at``."""
    price = Decimal(str(price))
    if order is None:
        order = Order.objects.create(
            account=account,
            instrument=instrument,
            side=side,
            quantity=quantity,
            filled_quantity=quantity,
            average_price=price,
            order_type="MARKET",
            product=product,
            margin_price=price,
            status="FILLED",
            source="api",
        )
    return Trade.objects.create(
        account=account,
        order=order,
        instrument=instrument,
        product=product,
        side=side,
        quantity=quantity,
        price=price,
        exchange=instrument.exchange,
        broker_trade_id=f"T{next(_ids)}",
        executed_at=ist(at),
    )
