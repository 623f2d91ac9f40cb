"""Whether an alert's condition holds for a quote: pure functions over Decimals, no database.

``ltp`` is the newest price; ``high`` and ``low`` the extremes it reached since the listener last
looked (the newest price when nothing was conflated, see marketdata.listeners.PassedRange), so a
level touched between two batches still counts; ``previous`` the last price this process saw before
them (None on the first quote: a crossing needs two sides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from alerts.models import Average, Condition

PRICE_CONDITIONS = frozenset({Condition.LTP_ABOVE, Condition.LTP_BELOW, Condition.CROSS_UP, Condition.CROSS_DOWN})
CHANGE_CONDITIONS = frozenset({Condition.CHANGE_ABOVE, Condition.CHANGE_BELOW})
AVERAGE_CONDITIONS = frozenset({Condition.MA_CROSS_UP, Condition.MA_CROSS_DOWN})
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Seen:
    """What one instrument's market showed since the last batch."""

    ltp: Decimal
    high: Decimal
    low: Decimal
    previous: Decimal | None = None
    close: Decimal | None = None  # the previous session's close


def change_pct(ltp: Decimal, close: Decimal | None) -> Decimal | None:
    """The % change from the previous close; None without a positive close."""
    if close is None or close <= 0:
        return None
    return (ltp - close) * HUNDRED / close


def holds(condition: str, *, level: Decimal | None, seen: Seen, average: Decimal | None = None) -> bool:
    """Return whether ``condition`` holds for ``seen`` (``level`` a price or a percentage; ``average``
    the moving average the MA crossings compare with)."""
    if condition == Condition.LTP_ABOVE:
        return level is not None and seen.high >= level
    if condition == Condition.LTP_BELOW:
        return level is not None and seen.low <= level
    if condition in CHANGE_CONDITIONS:
        if level is None:
            return False
        if condition == Condition.CHANGE_ABOVE:
            pct = change_pct(seen.high, seen.close)
            return pct is not None and pct >= level
        pct = change_pct(seen.low, seen.close)
        return pct is not None and pct <= level
    if condition in AVERAGE_CONDITIONS:
        level = average
    if level is None or seen.previous is None:
        return False
    if condition in (Condition.CROSS_UP, Condition.MA_CROSS_UP):
        return seen.previous < level <= seen.high
    if condition in (Condition.CROSS_DOWN, Condition.MA_CROSS_DOWN):
        return seen.previous > level >= seen.low
    return False


def moving_average(kind: str, closes: Sequence[Decimal], minutes: int) -> Decimal | None:
    """The SMA or EMA of the last ``minutes`` closes (oldest first); None with fewer closes than that.

    The EMA starts from the SMA of the first ``minutes`` closes and runs over the rest with the usual
    weight 2 / (minutes + 1)."""
    if minutes < 1 or len(closes) < minutes:
        return None
    if kind == Average.SMA:
        return sum(closes[-minutes:], Decimal(0)) / minutes
    weight = Decimal(2) / (minutes + 1)
    ema = sum(closes[:minutes], Decimal(0)) / minutes
    for close in closes[minutes:]:
        ema += (close - ema) * weight
    return ema
