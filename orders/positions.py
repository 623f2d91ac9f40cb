"""Position and P&L arithmetic: what a fill does to a position, as pure functions on numbers.

A position is netted by the average-cost method. A fill on the position's side (or into a flat
position) moves the average price to the weighted average of the two, to the 4 places the price
columns hold. A fill against it realises (fill price - average) on the quantity it closes for a long,
the reverse for a short, and leaves the average where it was; one larger than the position closes it
and opens the rest on the other side at the fill price; one that closes it exactly leaves it flat at
an average of zero. Nothing here reads or writes a row: the services read a position's figures,
apply fills and write them back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

PRICE_PLACES = Decimal("0.0001")  # the price columns' 4 decimal places
ZERO = Decimal(0)


class PositionFigures(NamedTuple):
    """The netted figures of one position (account, instrument, product), as ``Position`` stores them.

    A named tuple rather than a frozen dataclass: one is built for every fill, and a tuple is cheaper
    to build."""

    net_quantity: int = 0
    average_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    buy_quantity: int = 0
    buy_value: Decimal = ZERO
    sell_quantity: int = 0
    sell_value: Decimal = ZERO


def average_price(held: int, average: Decimal, quantity: int, price: Decimal) -> Decimal:
    """Return the average price of ``held`` units at ``average`` plus ``quantity`` at ``price``, to 4 places."""
    return ((held * average + quantity * price) / (held + quantity)).quantize(PRICE_PLACES)


def apply_fill(
    figures: PositionFigures, *, side: str, quantity: int, price: Decimal
) -> tuple[PositionFigures, Decimal]:
    """Return the position after a fill of ``quantity`` (positive) at ``price`` on ``side`` ("BUY" or
    "SELL"), and the P&L that fill realised (zero unless it reduces the position)."""
    buying = side == "BUY"
    signed = quantity if buying else -quantity
    net, average, realised_pnl = figures.net_quantity, figures.average_price, figures.realised_pnl
    realised = ZERO
    if net == 0 or (net > 0) == (signed > 0):
        average = average_price(abs(net), average, quantity, price)
    else:
        closed = min(quantity, abs(net))
        realised = (price - average) * closed * (1 if net > 0 else -1)
        realised_pnl += realised
        if quantity > abs(net):
            average = price  # flipped: the rest opens at the fill price
        elif quantity == abs(net):
            average = ZERO
    buy_quantity, buy_value = figures.buy_quantity, figures.buy_value
    sell_quantity, sell_value = figures.sell_quantity, figures.sell_value
    if buying:
        buy_quantity += quantity
        buy_value += quantity * price
    else:
        sell_quantity += quantity
        sell_value += quantity * price
    after = PositionFigures(net + signed, average, realised_pnl, buy_quantity, buy_value, sell_quantity, sell_value)
    return after, realised


def unrealised_pnl(net_quantity: int, average: Decimal, ltp: Decimal | None) -> Decimal:
    """Return the mark-to-market P&L of ``net_quantity`` held at ``average`` at ``ltp`` (zero without a
    price or a quantity)."""
    if ltp is None or not net_quantity:
        return ZERO
    return (ltp - average) * net_quantity
