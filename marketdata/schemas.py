from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from ninja import Schema


class InstrumentOut(Schema):
    id: int
    exchange: str
    segment: str
    tradingsymbol: str
    exchange_token: str
    name: str
    instrument_type: str
    underlying: str
    expiry: date | None
    strike: Decimal | None
    lot_size: int
    tick_size: Decimal
    freeze_quantity: int | None
    lower_circuit: Decimal | None
    upper_circuit: Decimal | None


class DepthLevelOut(Schema):
    price: Decimal
    quantity: int
    orders: int


class QuoteOut(Schema):
    instrument_id: int
    ltp: Decimal
    change: Decimal | None
    ts: datetime
    bid: Decimal | None
    ask: Decimal | None
    bid_qty: int
    ask_qty: int
    volume: int
    oi: int
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    bids: list[DepthLevelOut]
    asks: list[DepthLevelOut]


class CandleOut(Schema):
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int
