"""Reads of market data: instrument lookups, quotes, and candle history at any timeframe."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import reduce

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, FloatField, Func, Max, Min, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Length

from marketdata.errors import InvalidRange, InvalidTimeframe, UnknownInstrument
from marketdata.gaps import GapReport, find_gaps, session_start
from marketdata.models import Candle, Instrument, InstrumentType
from marketdata.quotes import get_quotes

# Timeframe -> bucket width. Intraday buckets are aligned to the NSE open (09:15 IST = 03:45 UTC),
# daily ones to IST midnight, so a 15m bar is 09:15-09:30 and a day is an Indian calendar day.
TIMEFRAMES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "3m": timedelta(minutes=3),
    "5m": timedelta(minutes=5),
    "10m": timedelta(minutes=10),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
INTRADAY_ORIGIN = datetime(2000, 1, 3, 3, 45, tzinfo=UTC)
DAILY_ORIGIN = datetime(2000, 1, 2, 18, 30, tzinfo=UTC)
MAX_BARS = 5000


def instrument_resolve(refs: Iterable[int | str]) -> tuple[dict[int | str, int], list[int | str]]:
    """Map instrument ids and ``EXCHANGE:TRADINGSYMBOL`` strings to ids of active instruments.

    Returns (resolved, unknown): ``unknown`` lists the references that match nothing, in input order."""
    refs = list(dict.fromkeys(refs))
    ids = {r for r in refs if isinstance(r, int)}
    symbols = {}
    for ref in refs:
        if isinstance(ref, str):
            exchange, sep, symbol = ref.partition(":")
            if sep and exchange and symbol:
                symbols[ref] = (exchange.upper(), symbol)
    query = Q(pk__in=ids)
    for exchange, symbol in symbols.values():
        query |= Q(exchange=exchange, tradingsymbol=symbol)
    rows = Instrument.objects.filter(query, is_active=True).values_list("pk", "exchange", "tradingsymbol")
    by_symbol = {(exchange, symbol): pk for pk, exchange, symbol in rows}
    known_ids = {pk for pk, _, _ in rows}
    resolved: dict[int | str, int] = {}
    unknown: list[int | str] = []
    for ref in refs:
        pk = (
            ref
            if isinstance(ref, int) and ref in known_ids
            else by_symbol.get(symbols[ref])
            if isinstance(ref, str) and ref in symbols
            else None
        )
        if pk is None:
            unknown.append(ref)
        else:
            resolved[ref] = pk
    return resolved, unknown


def instrument_get(*, instrument_id: int) -> Instrument:
    """Return the instrument or raise UnknownInstrument."""
    try:
        return Instrument.objects.get(pk=instrument_id)
    except Instrument.DoesNotExist:
        raise UnknownInstrument(f"no instrument {instrument_id}", extra={"instruments": [instrument_id]}) from None


SEARCH_MAX_QUERY = 128  # no symbol or name is longer, so a longer query matches nothing
SEARCH_SPOT_CHAINS = 100  # option chains (underlying, expiry) whose strikes are ranked by distance from the money
_SPOT = (InstrumentType.EQ, InstrumentType.INDEX)
_OPTIONS = (InstrumentType.CE, InstrumentType.PE)


def instrument_search(
    *, query: str = "", exchange: str = "", instrument_type: str = "", underlying: str = "", limit: int = 50
) -> QuerySet[Instrument]:
    """Active instruments whose trading symbol (or, for an equity or index, name) contains ``query``, best
    first, at most ``limit``, with optional exact filters; every search in the terminal (the watchlist's, the
    REST API's) is this one.

    Symbols are matched as the exchanges write them, in capitals, and names in any case: PostgreSQL's
    ``upper()`` costs several times a plain LIKE, so it runs only on the names of equities and indices
    (a derivative's name is its underlying, which its symbol spells out anyway).

    The order, all of it in the database's ORDER BY:
    1. exact: the trading symbol equals the query, or an equity's or index's name or underlying does
       (a derivative's name is its underlying, so "NIFTY" is every NIFTY option's name: not exact);
    2. equities and indices: symbol prefix, then name prefix, then anywhere; then the shorter symbol;
    3. futures: underlying (or name) equal to the query, then prefix, then anywhere; then nearest expiry;
    4. options: the same match order, nearest expiry, then the strike's distance from the money relative to
       it: the underlying's last price (``quotes``), or the middle of that expiry's strikes without one.
    Ties go to NSE before other exchanges, then the symbol. A query with a NUL byte or longer than any
    symbol or name matches nothing."""
    query, exchange, instrument_type, underlying = (
        v.strip().upper() for v in (query, exchange, instrument_type, underlying)
    )
    if len(query) > SEARCH_MAX_QUERY or any("\x00" in v for v in (query, exchange, instrument_type, underlying)):
        return Instrument.objects.none()
    rows = Instrument.objects.filter(is_active=True)
    spot = Q(instrument_type__in=_SPOT)
    if query:
        rows = rows.filter(Q(tradingsymbol__contains=query) | spot & Q(name__icontains=query))
    if exchange:
        rows = rows.filter(exchange=exchange)
    if instrument_type:
        rows = rows.filter(instrument_type=instrument_type)
    if underlying:
        rows = rows.filter(underlying=underlying)
    exact = Q(tradingsymbol=query) | spot & (Q(name__iexact=query) | Q(underlying=query))
    rank = Case(
        *([When(exact, then=Value(0))] if query else []),
        When(spot, then=Value(1)),
        When(instrument_type=InstrumentType.FUT, then=Value(2)),
        default=Value(3),
    )
    # Constants never go into ORDER BY: PostgreSQL reads an integer there as a column number.
    order: list = [rank]
    match = None
    if query:
        match = Case(
            When(Q(underlying=query) | Q(name__iexact=query), then=Value(0)),
            When(tradingsymbol__startswith=query, then=Value(1)),
            When(name__istartswith=query, then=Value(2)),
            default=Value(3),
        )
        order.append(match)
    order.append(F("expiry").asc(nulls_last=True))
    moneyness = _moneyness(rows.filter(instrument_type__in=_OPTIONS), match)
    if moneyness is not None:
        order.append(moneyness.asc(nulls_last=True))
    venue = Case(When(exchange__in=("NSE", "NFO"), then=Value(0)), default=Value(1))
    return rows.order_by(*order, Length("tradingsymbol"), venue, "tradingsymbol", "exchange")[:limit]


def _moneyness(options: QuerySet[Instrument], match: Case | None) -> Case | None:
    """An option's distance from the money, ``|strike - centre| / centre``, as a CASE over the option chains
    the search can list first (the first ``SEARCH_SPOT_CHAINS`` by match and expiry); NULL for the rest.
    The centre is the underlying's last price, or the middle of the chain's strikes while it has none."""
    chains = options.values("underlying", "expiry").annotate(low=Min("strike"), high=Max("strike"))
    if match is not None:
        chains = chains.annotate(best=Min(match)).order_by("best", "expiry", "underlying")
    else:
        chains = chains.order_by("expiry", "underlying")
    listed = list(chains[:SEARCH_SPOT_CHAINS])
    spots = spot_prices({chain["underlying"] for chain in listed})
    whens = []
    for chain in listed:
        # A float, so that SQLite divides as reals (a whole-rupee strike is stored as an integer).
        centre = float(spots.get(chain["underlying"]) or (chain["low"] + chain["high"]) / 2)
        if centre > 0:
            whens.append(
                When(
                    underlying=chain["underlying"],
                    expiry=chain["expiry"],
                    then=Func(F("strike") - Value(centre), function="ABS") / Value(centre),
                )
            )
    return Case(*whens, default=None, output_field=FloatField()) if whens else None


def spot_prices(underlyings: Iterable[str]) -> dict[str, Decimal]:
    """Return the last price of each underlying's spot instrument (its equity, NSE first, or its index),
    for those that have one and a quote."""
    names = set(underlyings)
    spots = (
        Instrument.objects.filter(instrument_type__in=_SPOT, is_active=True)
        .filter(Q(underlying__in=names) | Q(exchange="NSE", tradingsymbol__in=names))  # both indexed
        .values_list("pk", "underlying", "tradingsymbol", "exchange", "instrument_type")
    )
    chosen: dict[str, tuple] = {}
    for pk, name, symbol, exchange, kind in spots:
        key = name if name in names else symbol
        preference = (exchange != "NSE", kind != InstrumentType.EQ)
        if key in names and (key not in chosen or preference < chosen[key][0]):
            chosen[key] = (preference, pk)
    last = get_quotes([pk for _, pk in chosen.values()])
    return {name: last[pk].ltp for name, (_, pk) in chosen.items() if pk in last}


def candle_last(*, instrument_ids: Iterable[int], chunk: int = 500) -> dict[int, Candle]:
    """Return each instrument's latest stored 1-minute bar, for those that have one.

    One query per ``chunk`` instruments, each bar found through the (instrument, ts) key newest first,
    so the cost grows with the instruments asked for, not with the history stored."""
    ids = list(dict.fromkeys(instrument_ids))
    found: dict[int, Candle] = {}
    for start in range(0, len(ids), chunk):
        latest = Candle.objects.filter(instrument_id=OuterRef("pk")).order_by("-ts").values("ts")[:1]
        pairs = (
            Instrument.objects.filter(pk__in=ids[start : start + chunk])
            .annotate(last_ts=Subquery(latest))
            .filter(last_ts__isnull=False)
            .values_list("pk", "last_ts")
        )
        wanted = [Q(instrument_id=pk, ts=ts) for pk, ts in pairs]
        if wanted:
            found.update((bar.instrument_id, bar) for bar in Candle.objects.filter(reduce(operator.or_, wanted)))
    return found


@dataclass(frozen=True)
class CandleRow:
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int


def candle_history(*, instrument_id: int, timeframe: str, start: datetime, end: datetime) -> list[CandleRow]:
    """Return bars of ``timeframe`` whose 1-minute bars fall in [start, end), oldest first.

    Higher timeframes are aggregated from the 1-minute bars by the database (``date_bin`` in
    PostgreSQL); on SQLite the same buckets are computed here. Raises InvalidTimeframe, InvalidRange."""
    width = TIMEFRAMES.get(timeframe)
    if width is None:
        raise InvalidTimeframe(
            f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}", extra={"allowed": list(TIMEFRAMES)}
        )
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidRange("start and end need a time zone (e.g. 2026-11-25T09:15:00+05:30)")
    if end <= start:
        raise InvalidRange("end must be after start", extra={"start": start.isoformat(), "end": end.isoformat()})
    if (end - start) / width > MAX_BARS:
        raise InvalidRange(
            f"the range holds more than {MAX_BARS} {timeframe} bars; narrow it or use a longer timeframe",
            extra={"max_bars": MAX_BARS},
        )
    minutes = Candle.objects.filter(instrument_id=instrument_id, ts__gte=start, ts__lt=end).order_by("ts")
    if timeframe == "1m":
        return [CandleRow(c.ts, c.open, c.high, c.low, c.close, c.volume, c.oi) for c in minutes]
    origin = DAILY_ORIGIN if width >= timedelta(days=1) else INTRADAY_ORIGIN
    if connection.vendor == "postgresql":
        return _history_sql(instrument_id, width, origin, start, end)
    return _history_python(minutes, width, origin)


_BUCKET_SQL = """
SELECT date_bin(%(width)s, ts, %(origin)s) AS bucket,
       (array_agg(open ORDER BY ts))[1],
       max(high), min(low),
       (array_agg(close ORDER BY ts DESC))[1],
       sum(volume), (array_agg(oi ORDER BY ts DESC))[1]
FROM marketdata_candle
WHERE instrument_id = %(instrument)s AND ts >= %(start)s AND ts < %(end)s
GROUP BY bucket ORDER BY bucket
"""


def _history_sql(instrument_id: int, width: timedelta, origin: datetime, start: datetime, end: datetime):
    with connection.cursor() as cursor:
        cursor.execute(
            _BUCKET_SQL,
            {"width": width, "origin": origin, "instrument": instrument_id, "start": start, "end": end},  # type: ignore[dict-item]  # django-stubs leaves timedelta out of the parameter types; psycopg takes it
        )
        return [
            CandleRow(bucket.astimezone(UTC), o, h, lo, c, int(v), int(oi))
            for bucket, o, h, lo, c, v, oi in cursor.fetchall()
        ]


def _history_python(minutes: Iterable[Candle], width: timedelta, origin: datetime) -> list[CandleRow]:
    rows: list[CandleRow] = []
    for candle in minutes:
        bucket = origin + ((candle.ts - origin) // width) * width
        if rows and rows[-1].ts == bucket:
            last = rows[-1]
            rows[-1] = CandleRow(
                bucket,
                last.open,
                max(last.high, candle.high),
                min(last.low, candle.low),
                candle.close,
                last.volume + candle.volume,
                candle.oi,
            )
        else:
            rows.append(CandleRow(bucket, candle.open, candle.high, candle.low, candle.close, candle.volume, candle.oi))
    return rows


MAX_PAGE = 12_000  # bars of one "before" page: 30 sessions of 1-minute bars (375 a session) and some


_BUCKET_BEFORE_SQL = """
SELECT * FROM (
  SELECT date_bin(%(width)s, ts, %(origin)s) AS bucket,
         (array_agg(open ORDER BY ts))[1],
         max(high), min(low),
         (array_agg(close ORDER BY ts DESC))[1],
         sum(volume), (array_agg(oi ORDER BY ts DESC))[1]
  FROM marketdata_candle
  WHERE instrument_id = %(instrument)s AND ts < %(before)s
  GROUP BY bucket ORDER BY bucket DESC LIMIT %(limit)s
) page ORDER BY bucket
"""


def candle_history_before(*, instrument_id: int, timeframe: str, before: datetime, limit: int) -> list[CandleRow]:
    """Return the last ``limit`` bars of ``timeframe`` made of 1-minute bars before ``before``, oldest
    first: the chart's first page (``before`` now) and each page further back (``before`` the oldest
    bar drawn, which opens a bucket, so every bar of a page is whole). Fewer than ``limit`` bars means
    the stored history starts there. Raises InvalidTimeframe, InvalidRange."""
    width = TIMEFRAMES.get(timeframe)
    if width is None:
        raise InvalidTimeframe(
            f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}", extra={"allowed": list(TIMEFRAMES)}
        )
    if before.tzinfo is None:
        raise InvalidRange("before needs a time zone (e.g. 2026-11-25T09:15:00+05:30)")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRange(f"limit must be between 1 and {MAX_PAGE}", extra={"max_bars": MAX_PAGE})
    minutes = Candle.objects.filter(instrument_id=instrument_id, ts__lt=before).order_by("-ts")
    if timeframe == "1m":
        page = [CandleRow(c.ts, c.open, c.high, c.low, c.close, c.volume, c.oi) for c in minutes[:limit]]
        page.reverse()
        return page
    origin = DAILY_ORIGIN if width >= timedelta(days=1) else INTRADAY_ORIGIN
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _BUCKET_BEFORE_SQL,
                {"width": width, "origin": origin, "instrument": instrument_id, "before": before, "limit": limit},  # type: ignore[dict-item]  # django-stubs leaves timedelta out of the parameter types; psycopg takes it
            )
            return [
                CandleRow(bucket.astimezone(UTC), o, h, lo, c, int(v), int(oi))
                for bucket, o, h, lo, c, v, oi in cursor.fetchall()
            ]
    # SQLite: read the minutes newest first until a bucket beyond the page begins.
    newest_first: list[Candle] = []
    buckets: set[datetime] = set()
    for candle in minutes.iterator(chunk_size=2000):
        bucket = origin + ((candle.ts - origin) // width) * width
        if bucket not in buckets and len(buckets) == limit:
            break
        buckets.add(bucket)
        newest_first.append(candle)
    newest_first.reverse()
    return _history_python(newest_first, width, origin)


def candle_latest_ts(*, instrument_id: int, start: datetime, end: datetime) -> datetime | None:
    """The latest stored 1-minute bar's time with ``start <= ts < end``, or None (an import resumes there)."""
    return (
        Candle.objects.filter(instrument_id=instrument_id, ts__gte=start, ts__lt=end)
        .order_by("-ts")
        .values_list("ts", flat=True)
        .first()
    )


def candle_newest_between(*, instrument_ids: Iterable[int], start: datetime, end: datetime) -> dict[int, datetime]:
    """Each instrument's newest stored 1-minute bar's time with ``start <= ts < end``, for those that
    have one (a gap after it is filled from the broker's history); one query over the range."""
    rows = (
        Candle.objects.filter(instrument_id__in=list(instrument_ids), ts__gte=start, ts__lt=end)
        .values("instrument_id")
        .annotate(newest=Max("ts"))
        .values_list("instrument_id", "newest")
    )
    return dict(rows)


def candle_minutes(*, instrument_id: int, start: datetime, end: datetime) -> list[datetime]:
    """The times of the stored 1-minute bars with ``start <= ts < end``, oldest first (a gap check)."""
    return list(
        Candle.objects.filter(instrument_id=instrument_id, ts__gte=start, ts__lt=end)
        .order_by("ts")
        .values_list("ts", flat=True)
    )


def candle_gaps(
    *, instrument_id: int, first: date, last: date, duplicates: dict[datetime, int] | None = None
) -> GapReport:
    """The session minutes from IST day ``first`` to ``last`` with no stored bar, on NSE's market days
    (weekdays not in ``settings.NSE_HOLIDAYS``), with the input's ``duplicates`` carried along."""
    present = candle_minutes(
        instrument_id=instrument_id,
        start=session_start(first),
        end=session_start(last) + timedelta(days=1),
    )
    holidays = [date.fromisoformat(day) for day in settings.NSE_HOLIDAYS]
    return find_gaps(present, first=first, last=last, holidays=holidays, duplicates=duplicates)
