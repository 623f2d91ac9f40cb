"""REST endpoints of market data: the symbol master, last quotes, and candle history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.http import HttpRequest
from ninja import Query, Router

from core.api_errors import errors
from marketdata import selectors
from marketdata.errors import InvalidRange, UnknownInstrument
from marketdata.quotes import get_quotes
from marketdata.schemas import CandleOut, InstrumentOut, QuoteOut

router = Router(tags=["market data"])
MAX_QUOTES = 500
EARLIEST_YEAR, LATEST_YEAR = 1990, 2200  # of a candle request's start and end


@router.get("/instruments", response=list[InstrumentOut])
def list_instruments(
    request: HttpRequest,
    q: str = "",
    exchange: str = "",
    instrument_type: str = "",
    underlying: str = "",
    limit: int = Query(50, ge=1, le=500),
):
    """Search the symbol master by symbol or name, optionally by exchange, type and underlying."""
    return selectors.instrument_search(
        query=q, exchange=exchange, instrument_type=instrument_type, underlying=underlying, limit=limit
    )


@router.get("/instruments/{instrument_id}", response=InstrumentOut)
def get_instrument(request: HttpRequest, instrument_id: int):
    return selectors.instrument_get(instrument_id=instrument_id)


@router.get("/quotes", response={200: list[QuoteOut], **errors(400, 404)})
def list_quotes(request: HttpRequest, instruments: str):
    """Last quotes of comma-separated instruments (ids or EXCHANGE:SYMBOL); 404 naming any unknown one.
    Instruments with no quote yet are left out."""
    refs: list[int | str] = [int(r) if r.strip().isdigit() else r.strip() for r in instruments.split(",") if r.strip()]
    if not refs or len(refs) > MAX_QUOTES:
        raise InvalidRange(f"give between 1 and {MAX_QUOTES} instruments", extra={"max": MAX_QUOTES})
    resolved, unknown = selectors.instrument_resolve(refs)
    if unknown:
        raise UnknownInstrument("unknown instruments: " + ", ".join(map(str, unknown)), extra={"instruments": unknown})
    ids = list(dict.fromkeys(resolved.values()))
    found = get_quotes(ids)
    return [_quote_out(found[i]) for i in ids if i in found]


def _quote_out(quote) -> dict:
    return {
        **{f: getattr(quote, f) for f in QuoteOut.model_fields if f not in {"bids", "asks", "change"}},
        "change": quote.change,
        "bids": list(quote.bids),
        "asks": list(quote.asks),
    }


@router.get("/candles/{instrument_id}", response={200: list[CandleOut], **errors(400)})
def list_candles(
    request: HttpRequest,
    instrument_id: int,
    timeframe: str = "1m",
    start: datetime | None = None,
    end: datetime | None = None,
    before: datetime | None = None,
    limit: int | None = Query(None, ge=1, le=selectors.MAX_PAGE),
):
    """OHLCV bars of ``timeframe`` (1m, 3m, 5m, 10m, 15m, 30m, 1h, 1d) in [start, end); by default the
    last day. Or, with ``limit`` (and optionally ``before``, default now), the last ``limit`` bars
    before ``before``: a chart's page of history, fewer bars once the stored history begins. Times are
    ISO 8601 with a zone; bars are labelled by their opening time in UTC."""
    selectors.instrument_get(instrument_id=instrument_id)
    if (before is not None or limit is not None) and (start is not None or end is not None):
        raise InvalidRange("ask for start/end or for before/limit, not both")
    for name, value in (("start", start), ("end", end), ("before", before)):
        # Bars exist between these years; outside them the default window's arithmetic would overflow.
        if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise InvalidRange(
                f"{name} must fall between the years {EARLIEST_YEAR} and {LATEST_YEAR}", extra={name: value.isoformat()}
            )
    if before is not None or limit is not None:
        return selectors.candle_history_before(
            instrument_id=instrument_id,
            timeframe=timeframe,
            before=before or datetime.now(UTC) + timedelta(minutes=1),
            limit=limit or selectors.MAX_BARS,
        )
    end = end or datetime.now(UTC) + timedelta(minutes=1)
    start = start or end - timedelta(days=1)
    return selectors.candle_history(instrument_id=instrument_id, timeframe=timeframe, start=start, end=end)
