"""Market quotes (full quote, LTP, OHLC) and the rows of the instruments dump."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from kite.records.parse import dec, items, kite_time, num, obj, opt_dec

# --- market quotes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KiteOHLC:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def ohlc_from(d: Any) -> KiteOHLC:
    d = obj(d)
    return KiteOHLC(open=dec(d["open"]), high=dec(d["high"]), low=dec(d["low"]), close=dec(d["close"]))


@dataclass(frozen=True, slots=True)
class KiteDepthLevel:
    price: Decimal
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class KiteQuote:
    instrument: str  # EXCHANGE:TRADINGSYMBOL, as asked
    instrument_token: int
    timestamp: datetime | None
    last_trade_time: datetime | None
    last_price: Decimal
    last_quantity: int
    average_price: Decimal
    volume: int
    buy_quantity: int
    sell_quantity: int
    oi: int
    oi_day_high: int
    oi_day_low: int
    net_change: Decimal
    lower_circuit_limit: Decimal | None
    upper_circuit_limit: Decimal | None
    ohlc: KiteOHLC
    bids: tuple[KiteDepthLevel, ...]
    asks: tuple[KiteDepthLevel, ...]


def _depth(levels: Any) -> tuple[KiteDepthLevel, ...]:
    return tuple(
        KiteDepthLevel(price=dec(level["price"]), quantity=num(level["quantity"]), orders=num(level.get("orders") or 0))
        for level in items(levels or [])
    )


def quote_from(instrument: str, d: Any) -> KiteQuote:
    d = obj(d)
    depth = obj(d.get("depth") or {"buy": [], "sell": []})
    return KiteQuote(
        instrument=instrument,
        instrument_token=num(d["instrument_token"]),
        timestamp=kite_time(d.get("timestamp")),
        last_trade_time=kite_time(d.get("last_trade_time")),
        last_price=dec(d["last_price"]),
        last_quantity=num(d.get("last_quantity") or 0),
        average_price=dec(d.get("average_price") or 0),
        volume=num(d.get("volume") or 0),
        buy_quantity=num(d.get("buy_quantity") or 0),
        sell_quantity=num(d.get("sell_quantity") or 0),
        oi=num(d.get("oi") or 0),
        oi_day_high=num(d.get("oi_day_high") or 0),
        oi_day_low=num(d.get("oi_day_low") or 0),
        net_change=dec(d.get("net_change") or 0),
        lower_circuit_limit=opt_dec(d.get("lower_circuit_limit")),
        upper_circuit_limit=opt_dec(d.get("upper_circuit_limit")),
        ohlc=ohlc_from(d["ohlc"]),
        bids=_depth(depth.get("buy")),
        asks=_depth(depth.get("sell")),
    )


@dataclass(frozen=True, slots=True)
class KiteLTP:
    instrument: str
    instrument_token: int
    last_price: Decimal


def ltp_from(instrument: str, d: Any) -> KiteLTP:
    d = obj(d)
    return KiteLTP(instrument=instrument, instrument_token=num(d["instrument_token"]), last_price=dec(d["last_price"]))


@dataclass(frozen=True, slots=True)
class KiteOHLCQuote:
    instrument: str
    instrument_token: int
    last_price: Decimal
    ohlc: KiteOHLC


def ohlc_quote_from(instrument: str, d: Any) -> KiteOHLCQuote:
    d = obj(d)
    return KiteOHLCQuote(
        instrument=instrument,
        instrument_token=num(d["instrument_token"]),
        last_price=dec(d["last_price"]),
        ohlc=ohlc_from(d["ohlc"]),
    )


# --- instruments -----------------------------------------------------------------------------------

INSTRUMENT_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


@dataclass(frozen=True, slots=True)
class KiteInstrument:
    """One row of the instruments dump (``GET /instruments``)."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: Decimal
    expiry: date | None
    strike: Decimal
    tick_size: Decimal
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str


def instrument_from(row: list[str]) -> KiteInstrument:
    if len(row) != len(INSTRUMENT_COLUMNS):
        raise ValueError(f"{len(row)} columns, expected {len(INSTRUMENT_COLUMNS)}")
    values = dict(zip(INSTRUMENT_COLUMNS, row, strict=True))
    expiry = values["expiry"].strip()
    return KiteInstrument(
        instrument_token=num(values["instrument_token"]),
        exchange_token=num(values["exchange_token"]),
        tradingsymbol=values["tradingsymbol"],
        name=values["name"],
        last_price=dec(values["last_price"] or "0"),
        expiry=date.fromisoformat(expiry) if expiry else None,
        strike=dec(values["strike"] or "0"),
        tick_size=dec(values["tick_size"] or "0"),
        lot_size=num(values["lot_size"] or "0"),
        instrument_type=values["instrument_type"],
        segment=values["segment"],
        exchange=values["exchange"],
    )


# --- historical candles ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KiteCandle:
    """One bar of ``GET /instruments/historical/:token/:interval``: ``ts`` its opening moment (UTC;
    Kite sends ISO 8601 with +0530), prices in rupees, ``oi`` 0 unless asked for with ``oi=1``."""

    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int


def candles_from(d: Any) -> tuple[KiteCandle, ...]:
    """Kite's ``{"candles": [[ts, o, h, l, c, v(, oi)], ...]}``; raises ValueError on another shape."""
    candles = []
    for row in obj(d)["candles"]:
        if not isinstance(row, list) or len(row) not in (6, 7) or not isinstance(row[0], str):
            raise ValueError("a candle is [timestamp, open, high, low, close, volume(, oi)]")
        moment = datetime.fromisoformat(row[0])
        if moment.tzinfo is None:
            raise ValueError("a candle's timestamp carries its zone")
        candles.append(
            KiteCandle(
                ts=moment.astimezone(UTC),
                open=dec(row[1]),
                high=dec(row[2]),
                low=dec(row[3]),
                close=dec(row[4]),
                volume=num(row[5]),
                oi=num(row[6]) if len(row) == 7 else 0,
            )
        )
    return tuple(candles)
