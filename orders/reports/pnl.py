"""The trader's P&L over IST days: per symbol and product, per segment and per day, realised and
unrealised, with the charges of every executed order.

- Realised P&L is the average-cost method of the positions panel (``orders.positions.apply_fill``):
  each (instrument, product) pair traded in the range is replayed from its first trade, so a position
  opened before the range closes inside it at its true average; what a fill realises counts on the
  fill's IST day when that day is in the range.
- Unrealised P&L is the quantity still open at the end of the range, at its average, marked at the last
  quote (``marketdata.quotes``); zero without a quote.
- Charges: each executed order's turnover in the range (its fills summed) pays ``brokers.charges`` for
  its segment and side, counted on the IST day of its first fill in the range.
- Gross is realised + unrealised; net is gross less charges.

Pairs not traded in the range are not in it (their open P&L is on the positions panel).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from brokers.charges import Segment
from marketdata.quotes import get_quotes
from orders.positions import PositionFigures, apply_fill, unrealised_pnl
from orders.reports.charges import ChargeTotals, executed_order_charges
from orders.reports.periods import DateRange
from orders.reports.trades import Fill, InstrumentInfo, fills_replayed, instruments_of

ZERO = Decimal(0)
SEGMENT_LABELS = {
    "equity_intraday": "Equity intraday",
    "equity_delivery": "Equity delivery",
    "futures": "Futures",
    "options": "Options",
}


@dataclass(slots=True)
class SymbolPnl:
    """One (instrument, product) pair's figures over the range."""

    instrument: InstrumentInfo
    product: str
    segment: Segment
    buy_quantity: int = 0
    buy_value: Decimal = ZERO
    sell_quantity: int = 0
    sell_value: Decimal = ZERO
    realised: Decimal = ZERO
    open_quantity: int = 0
    average_price: Decimal = ZERO
    ltp: Decimal | None = None
    unrealised: Decimal = ZERO
    charges: ChargeTotals = field(default_factory=ChargeTotals)

    @property
    def gross(self) -> Decimal:
        return self.realised + self.unrealised

    @property
    def net(self) -> Decimal:
        return self.gross - self.charges.total

    @property
    def segment_label(self) -> str:
        return SEGMENT_LABELS[self.segment]


@dataclass(slots=True)
class Totals:
    """Realised P&L and charges summed over a day, a segment or the whole range."""

    realised: Decimal = ZERO
    unrealised: Decimal = ZERO
    charges: ChargeTotals = field(default_factory=ChargeTotals)
    trades: int = 0

    @property
    def gross(self) -> Decimal:
        return self.realised + self.unrealised

    @property
    def net(self) -> Decimal:
        return self.gross - self.charges.total


@dataclass(frozen=True, slots=True)
class PnlReport:
    period: DateRange
    symbols: list[SymbolPnl]
    days: list[tuple[date, Totals]]
    segments: list[tuple[str, str, Totals]]
    totals: Totals


def pnl_report(*, account, period: DateRange) -> PnlReport:
    """Return ``account``'s P&L over ``period`` (module docstring). One query for the trades, one for their
    instruments, one read of the quote store."""
    start, end = period.bounds()
    fills = fills_replayed(account=account, start=start, end=end, history_to=end)
    instruments = instruments_of({f.instrument_id for f in fills})
    positions: dict[tuple[int, str], PositionFigures] = {}
    symbols: dict[tuple[int, str], SymbolPnl] = {}
    days: dict[date, Totals] = defaultdict(Totals)
    orders: dict[int, list] = {}  # order id -> [pair, side, turnover, day] over its fills in the range
    first, last = period.date_from, period.date_to
    for fill in fills:
        pair = (fill.instrument_id, fill.product)
        figures, realised = apply_fill(
            positions.get(pair, PositionFigures()), side=fill.side, quantity=fill.quantity, price=fill.price
        )
        positions[pair] = figures
        if fill.day < first:
            continue
        row = symbols.get(pair)
        if row is None:
            instrument = instruments[fill.instrument_id]
            row = symbols[pair] = SymbolPnl(instrument, fill.product, instrument.segment(fill.product))
        _count(row, fill, realised)
        day = days[fill.day]
        day.realised += realised
        day.trades += 1
        order = orders.get(fill.order_id)
        if order is None:
            orders[fill.order_id] = [pair, fill.side, fill.quantity * fill.price, fill.day]
        else:
            order[2] += fill.quantity * fill.price
    for pair, side, turnover, day_of in orders.values():
        row = symbols[pair]
        charges = executed_order_charges(segment=row.segment, side=side, turnover=turnover)
        row.charges.add(charges)
        days[day_of].charges.add(charges)
    _mark(symbols, positions)
    return _report(period, symbols, days, last)


def _count(row: SymbolPnl, fill: Fill, realised: Decimal) -> None:
    if fill.side == "BUY":
        row.buy_quantity += fill.quantity
        row.buy_value += fill.quantity * fill.price
    else:
        row.sell_quantity += fill.quantity
        row.sell_value += fill.quantity * fill.price
    row.realised += realised


def _mark(symbols: dict[tuple[int, str], SymbolPnl], positions: dict[tuple[int, str], PositionFigures]) -> None:
    """Each pair's quantity open at the end of the range, marked at the last quote."""
    open_pairs = [pair for pair in symbols if positions[pair].net_quantity]
    quotes = get_quotes(sorted({instrument_id for instrument_id, _ in open_pairs})) if open_pairs else {}
    for pair in open_pairs:
        row, figures = symbols[pair], positions[pair]
        quote = quotes.get(pair[0])
        row.open_quantity, row.average_price = figures.net_quantity, figures.average_price
        row.ltp = quote.ltp if quote is not None else None
        row.unrealised = unrealised_pnl(figures.net_quantity, figures.average_price, row.ltp)


def _report(period: DateRange, symbols: dict, days: dict[date, Totals], last: date) -> PnlReport:
    rows = sorted(symbols.values(), key=lambda r: (r.instrument.exchange, r.instrument.tradingsymbol, r.product))
    segments: dict[str, Totals] = {}
    totals = Totals(trades=sum(day.trades for day in days.values()))
    for row in rows:
        segment = segments.setdefault(row.segment, Totals())
        for bucket in (segment, totals):
            bucket.realised += row.realised
            bucket.unrealised += row.unrealised
            bucket.charges.add(row.charges)
    return PnlReport(
        period=period,
        symbols=rows,
        days=sorted(((day, figures) for day, figures in days.items() if day <= last), key=lambda item: item[0]),
        segments=[(name, SEGMENT_LABELS[name], segments[name]) for name in SEGMENT_LABELS if name in segments],
        totals=totals,
    )
