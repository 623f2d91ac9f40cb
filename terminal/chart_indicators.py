"""Indicators drawn over the chart's candles, computed with talipp from the same bars the chart shows.

A study is named in the query string as ``kind`` or ``kind:param:param`` (``ema:20``, ``bb:20:2``,
``macd:12:26:9``); its key in the answer is that name, normalised (``ema:20``). Each study answers one or
more lines (``value``; ``upper``/``middle``/``lower``; ``macd``/``signal``/``hist``; ``value``/``trend``),
each a list aligned to the bars, None while the indicator warms up.

- ``sma``, ``ema``, ``rsi``: over the close, one period;
- ``vwap``: volume-weighted typical price, anchored at each IST session (a new sum from 09:15 IST each day;
  on daily bars every bar is its own session);
- ``bb``: Bollinger Bands, a period and a standard-deviation multiplier;
- ``macd``: fast, slow and signal periods;
- ``supertrend``: an ATR period and a multiplier; ``trend`` is 1 (up) or -1 (down).

The strategies compute their indicators with the same library (strategies/indicators.py), so a line on the
chart is the value a strategy sees on that bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import groupby

from talipp.indicators import BB, EMA, MACD, RSI, SMA, VWAP, SuperTrend
from talipp.indicators.SuperTrend import Trend
from talipp.ohlcv import OHLCV

from marketdata.hours import IST
from marketdata.selectors import CandleRow
from terminal.errors import ChartError

MAX_STUDIES = 8
MAX_PERIOD = 500
MULTIPLIER_RANGE = (Decimal("0.1"), Decimal("10"))

Lines = dict[str, list[float | None]]


@dataclass(frozen=True)
class Param:
    name: str
    default: str
    integer: bool = True


@dataclass(frozen=True)
class Kind:
    params: tuple[Param, ...]
    overlay: bool  # drawn on the price pane, or in a pane of its own
    compute: Callable[[Sequence[CandleRow], list], Lines]


def _floats(values: Sequence[object | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]  # type: ignore[arg-type]


def _closes(bars: Sequence[CandleRow]) -> list[float]:
    return [float(b.close) for b in bars]


def _ohlcv(bars: Sequence[CandleRow]) -> list[OHLCV]:
    return [OHLCV(float(b.open), float(b.high), float(b.low), float(b.close), float(b.volume)) for b in bars]


def _sma(bars: Sequence[CandleRow], p: list) -> Lines:
    return {"value": _floats(SMA(p[0], input_values=_closes(bars)))}


def _ema(bars: Sequence[CandleRow], p: list) -> Lines:
    return {"value": _floats(EMA(p[0], input_values=_closes(bars)))}


def _rsi(bars: Sequence[CandleRow], p: list) -> Lines:
    return {"value": _floats(RSI(p[0], input_values=_closes(bars)))}


def _vwap(bars: Sequence[CandleRow], p: list) -> Lines:
    values: list[float | None] = []
    for _, session in groupby(bars, key=lambda b: b.ts.astimezone(IST).date()):
        values.extend(_floats(VWAP(input_values=_ohlcv(list(session)))))
    return {"value": values}


def _bb(bars: Sequence[CandleRow], p: list) -> Lines:
    out = list(BB(p[0], float(p[1]), input_values=_closes(bars)))
    return {
        "upper": [None if v is None else v.ub for v in out],
        "middle": [None if v is None else v.cb for v in out],
        "lower": [None if v is None else v.lb for v in out],
    }


def _macd(bars: Sequence[CandleRow], p: list) -> Lines:
    out = list(MACD(p[0], p[1], p[2], input_values=_closes(bars)))
    return {
        "macd": [None if v is None else v.macd for v in out],
        "signal": [None if v is None or v.signal is None else v.signal for v in out],
        "hist": [None if v is None or v.histogram is None else v.histogram for v in out],
    }


def _supertrend(bars: Sequence[CandleRow], p: list) -> Lines:
    out = list(SuperTrend(p[0], float(p[1]), input_values=_ohlcv(bars)))
    return {
        "value": [None if v is None else v.value for v in out],
        "trend": [None if v is None else (1.0 if v.trend == Trend.UP else -1.0) for v in out],
    }


_PERIOD = Param("period", "20")
KINDS: dict[str, Kind] = {
    "sma": Kind((_PERIOD,), True, _sma),
    "ema": Kind((_PERIOD,), True, _ema),
    "vwap": Kind((), True, _vwap),
    "bb": Kind((_PERIOD, Param("multiplier", "2", integer=False)), True, _bb),
    "supertrend": Kind((Param("period", "10"), Param("multiplier", "3", integer=False)), True, _supertrend),
    "rsi": Kind((Param("period", "14"),), False, _rsi),
    "macd": Kind((Param("fast", "12"), Param("slow", "26"), Param("signal", "9")), False, _macd),
}


@dataclass(frozen=True)
class Study:
    key: str
    kind: str
    params: list

    @property
    def warmup(self) -> int:
        """Bars read before the first one drawn, so the first drawn values have converged: ten times the
        periods the study chains (MACD's slow EMA, then its signal's); Wilder's RSI forgets slowest."""
        return 10 * sum(p for p in self.params if isinstance(p, int)) or 1


def _param(kind: str, param: Param, text: str) -> int | Decimal:
    where = {"study": kind, "param": param.name, "value": text[:20]}
    if param.integer:
        if not text.isascii() or not text.isdigit() or len(text) > 4 or not 1 <= int(text) <= MAX_PERIOD:
            raise ChartError(
                f"{kind} {param.name} must be a whole number from 1 to {MAX_PERIOD}", code="invalid_period", extra=where
            )
        return int(text)
    try:
        value = Decimal(text) if len(text) <= 8 else None
    except InvalidOperation:
        value = None
    low, high = MULTIPLIER_RANGE
    if value is None or not value.is_finite() or not low <= value <= high:
        raise ChartError(
            f"{kind} {param.name} must be a number from {low} to {high}", code="invalid_period", extra=where
        )
    return value


def parse_studies(text: str) -> list[Study]:
    """Parse ``ema:20,rsi:14,vwap`` into studies, in order, without repeats. Raises ChartError naming the
    unknown study or the bad parameter."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise ChartError("name at least one study, e.g. studies=ema:20", code="no_studies")
    if len(names) > MAX_STUDIES:
        raise ChartError(f"at most {MAX_STUDIES} studies at once", code="too_many_studies", extra={"max": MAX_STUDIES})
    studies: dict[str, Study] = {}
    for name in names:
        kind, *given = name.split(":")
        spec = KINDS.get(kind)
        if spec is None:
            raise ChartError(
                f"unknown study {kind[:20]!r}; one of {', '.join(KINDS)}",
                code="unknown_study",
                extra={"study": kind[:20], "allowed": list(KINDS)},
            )
        if len(given) > len(spec.params):
            raise ChartError(
                f"{kind} takes {len(spec.params)} parameter(s)", code="invalid_period", extra={"study": kind}
            )
        texts = given + [p.default for p in spec.params[len(given) :]]
        params = [_param(kind, p, t) for p, t in zip(spec.params, texts, strict=True)]
        if kind == "macd" and not params[0] < params[1]:
            raise ChartError("macd's fast period must be shorter than its slow one", code="invalid_period")
        key = ":".join([kind, *(str(p) for p in params)])
        studies.setdefault(key, Study(key, kind, params))
    return list(studies.values())


def compute(study: Study, bars: Sequence[CandleRow]) -> Lines:
    """The study's lines over ``bars``, one value (or None) per bar."""
    if not bars:
        return {}
    return KINDS[study.kind].compute(bars, study.params)
