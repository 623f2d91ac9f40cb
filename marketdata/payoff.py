"""The profit and loss of a multi-leg option position: at expiry (exact, in rupees) and today (by a
pricing model). Pure functions, no database.

At expiry each leg is worth its intrinsic value, so the position's P&L is piecewise linear in the
underlying price S with kinks only at the strikes:

    pnl(S) = sum over legs of  side · quantity · (max(S - K, 0) for a call, max(K - S, 0) for a put  -  premium)

with side +1 bought and -1 sold. Its extremes are at S = 0 or at a strike, unless the slope beyond the
highest strike is not zero (then profit or loss is unlimited upwards); its breakevens are where a
segment crosses zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PayoffLeg:
    strike: Decimal
    call: bool
    side: int  # +1 bought, -1 sold
    quantity: int  # units (lots x lot size)
    premium: Decimal  # the price paid or received per unit


@dataclass(frozen=True, slots=True)
class Payoff:
    """What the builder shows. ``max_profit``/``max_loss`` are None when unlimited; ``max_loss`` is
    the most negative P&L (a number below or at zero). ``net_premium`` is positive for a credit."""

    net_premium: Decimal
    max_profit: Decimal | None
    max_loss: Decimal | None
    breakevens: list[Decimal]


def leg_value_at_expiry(leg: PayoffLeg, underlying: Decimal) -> Decimal:
    intrinsic = max(underlying - leg.strike, ZERO) if leg.call else max(leg.strike - underlying, ZERO)
    return leg.side * leg.quantity * (intrinsic - leg.premium)


def pnl_at_expiry(legs: list[PayoffLeg], underlying: Decimal) -> Decimal:
    """Return the position's P&L in rupees if the underlying settles at ``underlying``."""
    return sum((leg_value_at_expiry(leg, underlying) for leg in legs), ZERO)


def net_premium(legs: list[PayoffLeg]) -> Decimal:
    """Return the premium received less the premium paid (positive: a credit)."""
    return sum((-leg.side * leg.quantity * leg.premium for leg in legs), ZERO)


def _slope_above(legs: list[PayoffLeg]) -> int:
    """dP/dS beyond the highest strike: only calls move there."""
    return sum(leg.side * leg.quantity for leg in legs if leg.call)


def kinks(legs: list[PayoffLeg]) -> list[Decimal]:
    """Return 0 and every strike, ascending: the points where the expiry P&L changes slope."""
    return sorted({ZERO, *(leg.strike for leg in legs)})


def payoff(legs: list[PayoffLeg]) -> Payoff:
    """Return the net premium, the maximum profit and loss at expiry, and the breakevens (ascending).

    Raises ValueError for no legs."""
    if not legs:
        raise ValueError("a position needs at least one leg")
    points = kinks(legs)
    values = [pnl_at_expiry(legs, s) for s in points]
    slope = _slope_above(legs)
    max_profit = None if slope > 0 else max(values)
    max_loss = None if slope < 0 else min(values)
    breakevens: list[Decimal] = []
    for n in range(len(points) - 1):
        (s0, v0), (s1, v1) = (points[n], values[n]), (points[n + 1], values[n + 1])
        if v0 == 0 and s0 > 0:
            breakevens.append(s0)
        if (v0 < 0 < v1) or (v1 < 0 < v0):
            breakevens.append(s0 + (s1 - s0) * (-v0) / (v1 - v0))
    last, last_value = points[-1], values[-1]
    if last_value == 0 and last > 0:
        breakevens.append(last)
    elif slope and (last_value < 0 < slope or slope < 0 < last_value):
        breakevens.append(last - last_value / slope)
    return Payoff(
        net_premium=net_premium(legs),
        max_profit=max_profit,
        max_loss=max_loss,
        breakevens=[b.quantize(Decimal("0.01")) for b in breakevens],
    )


def curve(legs: list[PayoffLeg], low: Decimal, high: Decimal, *, points: int = 81) -> list[tuple[Decimal, Decimal]]:
    """Return (underlying, P&L at expiry) from ``low`` to ``high``: the evenly spaced points and every
    strike between them, so the piecewise-linear line is drawn exactly."""
    step = (high - low) / (points - 1)
    xs = {low + step * i for i in range(points)} | {leg.strike for leg in legs if low < leg.strike < high}
    return [(s, pnl_at_expiry(legs, s)) for s in sorted(xs)]


def curve_today(
    legs: list[PayoffLeg],
    prices: list[Callable[[float], float] | None],
    xs: list[Decimal],
) -> list[tuple[Decimal, Decimal]] | None:
    """Return (underlying, P&L now) at each of ``xs``, each leg valued by its ``prices`` function of the
    underlying price (a pricing model at the leg's IV and today's time to expiry); None when any leg
    has no model (no IV), since a curve without it would mislead."""
    if any(price is None for price in prices):
        return None
    out = []
    for s in xs:
        total = 0.0
        for leg, price in zip(legs, prices, strict=True):
            assert price is not None
            total += leg.side * leg.quantity * (price(float(s)) - float(leg.premium))
        out.append((s, Decimal(str(round(total, 2)))))
    return out
