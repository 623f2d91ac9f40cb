"""Indicators for strategies, one interface over talipp's incremental indicators and a few of our own.

Every indicator is updated with each closed bar (``update(bar)``) and answers ``value``: a Decimal, or
None while it is warming up (too few bars yet). talipp computes in floats; values come back as the
Decimal of the float's shortest repr, so they compare with prices (Decimals) without surprises.
The EMA is computed here, with talipp's float arithmetic step for step (the same values to the bit),
because talipp's bookkeeping per value cost more than the arithmetic; its ``number`` is the float
itself, for strategies that only compare two EMAs (the floats order as their Decimals do).

- ``Ema`` / ``Sma`` / ``Rsi`` (Wilder's smoothing) over a bar's close (or open, high, low, typical price);
- ``Vwap``: the volume-weighted typical price, reset at each IST session;
- ``SuperTrend``: the SuperTrend line over an ATR (``trend`` says "up" or "down");
- ``OpeningRange``: the high and low of the first ``minutes`` of the IST session (``value`` is the
  requested edge once the range is complete);
- ``TimeOfDay``: the IST time a bar closes at, as minutes since midnight.

Indicators live on the strategy instance, not in ``ctx.state``: the engine rebuilds them by replaying
history (``StrategyRun.warm_up``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from talipp.indicators import RSI as _RSI
from talipp.indicators import SMA as _SMA
from talipp.indicators import VWAP as _VWAP
from talipp.indicators import SuperTrend as _SuperTrend
from talipp.indicators.SuperTrend import Trend
from talipp.ohlcv import OHLCV

from marketdata.hours import IST, MARKET_OPEN
from strategies.contract import Bar

Source = Literal["close", "open", "high", "low", "typical"]

# talipp keeps every input and output; past this many bars the oldest are dropped (keeping far more than
# any period needs), so a deployment that runs for months does not grow without bound.
_KEEP = 1000


class Indicator(Protocol):
    def update(self, bar: Bar) -> None:
        """Adds one closed bar."""

    @property
    def value(self) -> Decimal | None:
        """The current value, or None while warming up."""


def to_decimal(value: float | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(repr(float(value)))


def source_price(bar: Bar, source: Source) -> Decimal:
    if source == "typical":
        return (bar.high + bar.low + bar.close) / 3
    return {"close": bar.close, "open": bar.open, "high": bar.high, "low": bar.low}[source]


def close_time(bar: Bar) -> datetime:
    """When ``bar`` closed: its open plus its timeframe."""
    return bar.ts + timedelta(minutes=bar.timeframe)


def _ohlcv(bar: Bar) -> OHLCV:
    return OHLCV(float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume))


class _Talipp:
    """A talipp indicator fed one value per bar, trimmed to the last ``_KEEP`` bars."""

    def __init__(self, inner: Any, keep: int) -> None:
        self._inner = inner
        self._keep = max(_KEEP, keep)

    def _add(self, value: Any) -> None:
        self._inner.add(value)
        if len(self._inner.input_values) > 2 * self._keep:
            self._inner.purge_oldest(len(self._inner.input_values) - self._keep)

    def _last(self) -> Any:
        outputs = self._inner.output_values
        return outputs[-1] if outputs else None


class _OverPrice(_Talipp):
    """A talipp indicator over one price of each bar (its close unless told otherwise)."""

    def __init__(self, inner: Any, period: int, source: Source) -> None:
        super().__init__(inner, 4 * period)
        self.source = source

    def update(self, bar: Bar) -> None:
        self._add(float(source_price(bar, self.source)))

    @property
    def value(self) -> Decimal | None:
        return to_decimal(self._last())


class Ema:
    """Exponential moving average, as talipp's EMA computes it: seeded with the simple average of the first
    ``period`` values (``sum(values) / period``), then ``ema = k * price + (1 - k) * previous`` with
    ``k = 2.0 / (period + 1.0)``, in floats. ``number`` is that float (None while warming up), ``value``
    its Decimal."""

    def __init__(self, period: int, source: Source = "close") -> None:
        if period < 1:
            raise ValueError("an EMA's period must be at least 1")
        self.period = period
        self.source = source
        self._k = 2.0 / (period + 1.0)
        self._seed: list[float] = []
        self.number: float | None = None

    def update(self, bar: Bar) -> None:
        self.push(float(bar.close if self.source == "close" else source_price(bar, self.source)))

    def push(self, price: float) -> float | None:
        """The next value as a float: what ``update`` does with the bar's price (the EMA crossover converts
        a bar's close once for its two EMAs). Returns ``number``."""
        previous = self.number
        if previous is not None:
            k = self._k
            number = self.number = k * price + (1.0 - k) * previous
            return number
        self._seed.append(price)
        if len(self._seed) == self.period:
            self.number = sum(self._seed) / self.period
            self._seed = []
        return self.number

    @property
    def value(self) -> Decimal | None:
        number = self.number
        return None if number is None else Decimal(repr(number))


class Sma(_OverPrice):
    """Simple moving average of the last ``period`` values."""

    def __init__(self, period: int, source: Source = "close") -> None:
        super().__init__(_SMA(period), period, source)


class Rsi(_OverPrice):
    """Relative strength index with Wilder's smoothing: first a simple average of ``period`` gains and
    losses, then ``avg = (avg * (period - 1) + current) / period``; a value from bar ``period + 1`` on."""

    def __init__(self, period: int, source: Source = "close") -> None:
        super().__init__(_RSI(period), period, source)


class Vwap(_Talipp):
    """Volume-weighted average of the typical price ``(high + low + close) / 3``, from the first bar of
    each IST session (a new Indian calendar day starts it afresh). None until some volume has traded."""

    def __init__(self) -> None:
        super().__init__(_VWAP(), _KEEP)
        self._session: date | None = None

    def update(self, bar: Bar) -> None:
        day = bar.ts.astimezone(IST).date()
        if day != self._session:
            self._inner = _VWAP()
            self._session = day
        self._add(_ohlcv(bar))

    @property
    def value(self) -> Decimal | None:
        return to_decimal(self._last())


class SuperTrend(_Talipp):
    """SuperTrend over an ATR of ``period`` (Wilder's) times ``multiplier``: the line sits below the price
    in an up trend and above it in a down trend. talipp's first output is a placeholder 0, so the value
    starts one bar after the ATR's first (bar ``period + 1``)."""

    def __init__(self, period: int, multiplier: Decimal | float = 3) -> None:
        super().__init__(_SuperTrend(period, float(multiplier)), 4 * period)

    def update(self, bar: Bar) -> None:
        self._add(_ohlcv(bar))

    def _ready(self) -> Any:
        outputs = [item for item in self._inner.output_values[-2:] if item is not None]
        return outputs[-1] if len(outputs) == 2 else None

    @property
    def value(self) -> Decimal | None:
        current = self._ready()
        return to_decimal(current.value) if current is not None else None

    @property
    def trend(self) -> Literal["up", "down"] | None:
        current = self._ready()
        if current is None:
            return None
        return "up" if current.trend == Trend.UP else "down"


class OpeningRange:
    """The high and low of the session's first ``minutes`` (from 09:15 IST), computed from the bars that
    open within that window. ``high``/``low`` (and ``value``, the ``edge`` asked for) are None until a bar
    closing at or after the window's end has arrived; a new IST day starts a new range."""

    def __init__(self, minutes: int, edge: Literal["high", "low"] = "high") -> None:
        self.minutes = minutes
        self.edge = edge
        self._day: date | None = None
        self._high: Decimal | None = None
        self._low: Decimal | None = None
        self.complete = False

    def update(self, bar: Bar) -> None:
        local = bar.ts.astimezone(IST)
        if local.date() != self._day:
            self._day, self._high, self._low, self.complete = local.date(), None, None, False
        start = datetime.combine(local.date(), MARKET_OPEN, tzinfo=IST)
        end = start + timedelta(minutes=self.minutes)
        if start <= local < end:
            self._high = bar.high if self._high is None else max(self._high, bar.high)
            self._low = bar.low if self._low is None else min(self._low, bar.low)
        if close_time(bar) >= end and self._high is not None:
            self.complete = True

    @property
    def high(self) -> Decimal | None:
        return self._high if self.complete else None

    @property
    def low(self) -> Decimal | None:
        return self._low if self.complete else None

    @property
    def value(self) -> Decimal | None:
        return self.high if self.edge == "high" else self.low


class TimeOfDay:
    """The IST wall-clock time the last bar closed at, as minutes since midnight (09:30 is 570)."""

    def __init__(self) -> None:
        self._minutes: int | None = None

    def update(self, bar: Bar) -> None:
        local = close_time(bar).astimezone(IST)
        self._minutes = local.hour * 60 + local.minute

    @property
    def value(self) -> Decimal | None:
        return None if self._minutes is None else Decimal(self._minutes)


def minutes_of(clock: time) -> Decimal:
    """A wall-clock time as minutes since midnight, the unit ``TimeOfDay`` answers in."""
    return Decimal(clock.hour * 60 + clock.minute)
