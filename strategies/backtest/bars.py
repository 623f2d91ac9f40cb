"""The stored data a backtest reads: instruments as the simulated exchange needs them, and 1-minute candles."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from marketdata.hours import IST
from marketdata.models import Candle, Instrument
from strategies.backtest.engine import InstrumentSpec
from strategies.contract import Bar


def instrument_spec(instrument: Instrument) -> InstrumentSpec:
    return InstrumentSpec(
        instrument_id=instrument.pk,
        exchange=instrument.exchange,
        symbol=instrument.tradingsymbol,
        instrument_type=instrument.instrument_type,
        lot_size=instrument.lot_size or 1,
        tick_size=instrument.tick_size,
        freeze_quantity=instrument.freeze_quantity,
        underlying=instrument.underlying,
        strike=instrument.strike,
        expiry=instrument.expiry,
    )


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC-aware instants from ``start``'s IST midnight to the midnight after ``end``."""
    return datetime.combine(start, time(0), IST), datetime.combine(end + timedelta(days=1), time(0), IST)


def candles_exist(*, instrument_ids: Iterable[int], start: date, end: date) -> set[int]:
    """The instruments among ``instrument_ids`` with at least one stored candle from ``start`` to ``end`` (IST)."""
    since, until = day_bounds(start, end)
    have = set()
    for instrument_id in instrument_ids:
        if Candle.objects.filter(instrument_id=instrument_id, ts__gte=since, ts__lt=until).exists():
            have.add(instrument_id)
    return have


def stored_bars(*, instrument_ids: Iterable[int], start: date, end: date) -> list[Bar]:
    """The stored 1-minute bars of the instruments from ``start`` to ``end`` (IST days, both included),
    ordered by minute then instrument."""
    since, until = day_bounds(start, end)
    rows = (
        Candle.objects.filter(instrument_id__in=sorted(set(instrument_ids)), ts__gte=since, ts__lt=until)
        .order_by("ts", "instrument_id")
        .values_list("instrument_id", "ts", "open", "high", "low", "close", "volume")
        .iterator(chunk_size=10_000)
    )
    return [Bar(i, ts, o, h, low, c, v) for i, ts, o, h, low, c, v in rows]
