"""1-minute bars from ticks, in memory, for the feed process to store.

``volume`` of a bar is the traded volume within its minute. Feeds report the day's cumulative volume
(as exchanges and broker tickers do), so a bar's volume is the rise of that figure from the last
tick before the minute to the last tick in it; the first bar an aggregator sees for an instrument
counts from its first tick, and a drop in the cumulative figure (a new session) counts from zero.

After a restart the feed ``resume``s from the bars already stored: a tick in a stored bar's minute
extends that bar (its open kept, its high, low, close and volume carried on) instead of replacing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from marketdata.quotes import Quote


@dataclass(slots=True)
class Bar:
    instrument_id: int
    ts: datetime  # the minute the bar opens, UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int


@dataclass(slots=True)
class _State:
    bar: Bar
    volume_before: int  # cumulative volume when the bar opened
    last_volume: int
    dirty: bool = True
    stored: bool = False  # a bar read back from the database, not yet extended by a tick


class CandleAggregator:
    """Folds quotes into per-instrument 1-minute bars.

    ``add`` returns nothing; ``drain`` returns every bar that changed since the last drain (closed
    bars and the one still forming), so storing them is an idempotent upsert.
    """

    def __init__(self) -> None:
        self._states: dict[int, _State] = {}
        self._closed: list[Bar] = []

    def add(self, quotes: list[Quote]) -> None:
        for quote in quotes:
            minute = quote.ts.replace(second=0, microsecond=0)
            state = self._states.get(quote.instrument_id)
            if state is None:
                self._states[quote.instrument_id] = _State(
                    bar=self._open_bar(quote, minute, volume=0), volume_before=quote.volume, last_volume=quote.volume
                )
                continue
            bar = state.bar
            if minute < bar.ts:
                continue  # a late tick for a bar already stored: ignored rather than rewriting history
            if state.stored:
                # The stored bar's volume is already counted: count this feed's volume from its first tick.
                state.stored = False
                state.volume_before = quote.volume - (bar.volume if minute == bar.ts else 0)
                state.last_volume = quote.volume
            if quote.volume < state.last_volume:
                state.volume_before = state.last_volume = 0  # cumulative volume restarted: a new session
            if minute > bar.ts:
                if state.dirty:
                    self._closed.append(bar)
                state.volume_before = state.last_volume
                state.bar = self._open_bar(quote, minute, volume=0)
            else:
                bar.high = max(bar.high, quote.ltp)
                bar.low = min(bar.low, quote.ltp)
                bar.close = quote.ltp
                bar.oi = quote.oi
            state.last_volume = quote.volume
            state.bar.volume = quote.volume - state.volume_before
            state.dirty = True

    def open_minutes(self) -> dict[int, datetime]:
        """Each instrument's newest bar's minute (stored or not): where a gap after it would start.
        Safe to call from another thread than ``add``'s (a snapshot of the states)."""
        return {instrument_id: state.bar.ts for instrument_id, state in list(self._states.items())}

    @staticmethod
    def _open_bar(quote: Quote, minute: datetime, *, volume: int) -> Bar:
        return Bar(quote.instrument_id, minute, quote.ltp, quote.ltp, quote.ltp, quote.ltp, volume, quote.oi)

    def resume(self, bars: list[Bar]) -> None:
        """Continue from each instrument's last stored bar (read back after a restart): a tick in its minute
        extends it, a later one opens the next bar. Instruments with ticks already seen are left alone."""
        for bar in bars:
            if bar.instrument_id not in self._states:
                self._states[bar.instrument_id] = _State(
                    bar=Bar(**{name: getattr(bar, name) for name in Bar.__slots__}),
                    volume_before=0,
                    last_volume=0,
                    dirty=False,
                    stored=True,
                )

    def drain(self) -> list[Bar]:
        """Return copies of the bars changed since the last call (closed first, then forming ones)."""
        bars = self._closed
        self._closed = []
        for state in self._states.values():
            if state.dirty:
                bars.append(Bar(**{name: getattr(state.bar, name) for name in Bar.__slots__}))
                state.dirty = False
        return bars
