"""Generated 1-minute session bars for import tests: every session minute (09:15-15:29 IST) of the
weekdays in a range, prices a deterministic walk, as a CSV file or as Kite's historical rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from marketdata.gaps import market_days, session_start

IST_OFFSET = timedelta(hours=5, minutes=30)


def session_minutes(first: date, last: date, *, holidays=()) -> list[datetime]:
    """Every session minute (UTC) of the market days from ``first`` to ``last``."""
    days = market_days(first, last, holidays=holidays)
    return [session_start(day) + timedelta(minutes=m) for day in days for m in range(375)]


def bar_values(index: int) -> tuple[Decimal, Decimal, Decimal, Decimal, int, int]:
    """Open, high, low, close, volume and oi of the ``index``-th bar: a bounded deterministic walk."""
    base = Decimal(1000) + Decimal(index % 200) / 4
    open_, close = base, base + Decimal("0.25") * (1 if index % 3 else -1)
    return open_, max(open_, close) + Decimal("0.5"), min(open_, close) - Decimal("0.5"), close, 100 + index % 50, 0


def csv_text(minutes: list[datetime]) -> str:
    lines = ["timestamp,open,high,low,close,volume,oi"]
    for index, ts in enumerate(minutes):
        o, h, lo, c, v, oi = bar_values(index)
        lines.append(f"{(ts + IST_OFFSET).replace(tzinfo=None):%Y-%m-%d %H:%M},{o},{h},{lo},{c},{v},{oi}")
    return "\n".join(lines) + "\n"


def kite_rows(minutes: list[datetime]) -> list[list]:
    """Kite's historical rows: ``[ISO time +0530, open, high, low, close, volume, oi]``."""
    rows = []
    for index, ts in enumerate(minutes):
        o, h, lo, c, v, oi = bar_values(index)
        rows.append([f"{(ts + IST_OFFSET).replace(tzinfo=None):%Y-%m-%dT%H:%M:%S}+0530", o, h, lo, c, v, oi])
    return rows
