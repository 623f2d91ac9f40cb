"""What the reports' API routes return (orders.reports.api): amounts as decimal strings in JSON."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from ninja import Schema


class ChargesOut(Schema):
    brokerage: Decimal
    stt: Decimal
    exchange: Decimal
    sebi: Decimal
    stamp: Decimal
    gst: Decimal
    total: Decimal


class PnlSymbolOut(Schema):
    instrument_id: int
    exchange: str
    tradingsymbol: str
    product: str
    segment: str
    buy_quantity: int
    buy_value: Decimal
    sell_quantity: int
    sell_value: Decimal
    realised: Decimal
    open_quantity: int
    average_price: Decimal
    ltp: Decimal | None
    unrealised: Decimal
    charges: ChargesOut
    net: Decimal


class PnlTotalsOut(Schema):
    trades: int
    realised: Decimal
    unrealised: Decimal
    gross: Decimal
    charges: ChargesOut
    net: Decimal


class PnlDayOut(PnlTotalsOut):
    day: date


class PnlSegmentOut(PnlTotalsOut):
    segment: str


class PnlOut(Schema):
    date_from: date
    date_to: date
    symbols: list[PnlSymbolOut]
    days: list[PnlDayOut]
    segments: list[PnlSegmentOut]
    totals: PnlTotalsOut


class TradebookRowOut(Schema):
    id: int
    executed_at: datetime
    exchange: str
    tradingsymbol: str
    side: str
    quantity: int
    price: Decimal
    value: Decimal
    product: str
    order_id: int
    broker_trade_id: str


class TradebookOut(Schema):
    count: int
    trades: list[TradebookRowOut]


class TaxLineOut(Schema):
    category: str
    exchange: str
    tradingsymbol: str
    bought_on: date | None
    sold_on: date
    quantity: int
    buy_value: Decimal | None
    sell_value: Decimal
    pnl: Decimal | None


class TaxCategoryOut(Schema):
    category: str
    label: str
    lines: int
    buy_value: Decimal
    sell_value: Decimal
    pnl: Decimal
    turnover: Decimal


class TaxOut(Schema):
    financial_year: str
    first_day: date
    last_day: date
    categories: list[TaxCategoryOut]
    charges: dict[str, ChargesOut]
    speculative_net: Decimal
    fno_net: Decimal
    lines: list[TaxLineOut]
