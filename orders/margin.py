"""Margin blocked per (account, instrument, product): the position plus the working orders.

The block is the larger of the worst-case long and worst-case short exposure: a pending sell that
would only close a long position blocks nothing extra, while one that would flip it short blocks for
the short part. Exposure is valued at the highest of the position's average price and the working
orders' margin prices (conservative), times the broker's margin rate for the product and side.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from infra import prepared
from infra.prepared import Prepared
from orders.models import Order, Position
from orders.states import LIVE

CENT = Decimal("0.01")


def group_margin(
    *, adapter, instrument, product: str, net: int, average: Decimal, orders: Iterable[tuple[str, int, Decimal]]
) -> Decimal:
    """Return the margin for a position of ``net`` at ``average`` plus working ``orders`` (side, remaining, price)."""
    buy_remaining = sell_remaining = 0
    reference = average if net else Decimal(0)
    for side, remaining, price in orders:
        if remaining <= 0:
            continue
        if side == "BUY":
            buy_remaining += remaining
        else:
            sell_remaining += remaining
        reference = max(reference, price)
    long_qty = max(0, net + buy_remaining)
    short_qty = max(0, sell_remaining - net)
    long_margin = (
        long_qty
        * reference
        * adapter.margin_rate(product=product, instrument_type=instrument.instrument_type, side="BUY")
    )
    short_margin = (
        short_qty
        * reference
        * adapter.margin_rate(product=product, instrument_type=instrument.instrument_type, side="SELL")
    )
    return max(long_margin, short_margin).quantize(CENT)


# Read on every order placed and every fill: compiled once.
_WORKING = Prepared(
    lambda p: Order.objects.filter(
        account_id=p.account, instrument_id=p.instrument, product=p.product, status__in=LIVE
    ),
    values=("pk", "side", "quantity", "filled_quantity", "margin_price"),
    account=int,
    instrument=int,
    product=str,
)


def working_orders(
    *, account_id: int, instrument_id: int, product: str, exclude_pk: int | None = None
) -> list[tuple[str, int, Decimal]]:
    """Return the group's working orders as (side, remaining quantity, margin price), but ``exclude_pk``."""
    rows = _WORKING.all(account=account_id, instrument=instrument_id, product=str(product))
    return [(side, quantity - filled, price) for pk, side, quantity, filled, price in rows if pk != exclude_pk]


def refresh_margin(
    *,
    adapter,
    funds,
    instrument,
    product: str,
    position: Position | None = None,
    orders: list[tuple[str, int, Decimal]] | None = None,
    save: bool = True,
) -> Position:
    """Recompute the group's block and move the difference into the locked ``funds``; return the position.

    A caller holding the account lock that already has the group's ``position`` row or its working
    ``orders`` (as ``working_orders`` returns them, after its own writes) passes them to save a read.
    With ``save=False`` the caller writes ``position.margin_blocked`` and ``funds.margin_blocked``
    itself, with its other changes to those rows.
    """
    if position is None:
        position, _ = Position.objects.get_or_create(
            account_id=funds.account_id, instrument=instrument, product=product
        )
    if orders is None:
        orders = working_orders(account_id=funds.account_id, instrument_id=instrument.pk, product=product)
    new = group_margin(
        adapter=adapter,
        instrument=instrument,
        product=product,
        net=position.net_quantity,
        average=position.average_price,
        orders=orders,
    )
    if new != position.margin_blocked:
        funds.margin_blocked += new - position.margin_blocked
        position.margin_blocked = new
        if save:
            prepared.update(position, ["margin_blocked", "updated_at"])
            prepared.update(funds, ["margin_blocked", "updated_at"])
    return position
