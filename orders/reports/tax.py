"""The tax P&L of one Indian financial year (1 April to 31 March, IST), from the account's trades.

- **Intraday (speculative business income)**: equity bought and sold on the same IST day, whatever the
  product: each day's matched quantity ``min(bought, sold)`` at the day's average buy and sell prices.
- **Delivery (capital gains)**: what an equity sell leaves after that day's intraday match is matched
  against earlier purchases first in, first out (FIFO lots, each at its day's average buy price). A lot
  held more than 12 months before the sale is a long-term gain (LTCG), else short-term (STCG). A sale with
  no lot left to match (shares bought before the terminal's records) is listed as unmatched, its cost unknown.
- **F&O (non-speculative business income)**: futures and options, realised by the average-cost method
  (``orders.positions``) on the IST day of the closing trade. The turnover is the sum of each closing
  trade's absolute P&L (the tax audit's measure for derivatives). Open contracts are not settled here.
- **Charges** (``brokers.charges``) are listed per category: intraday (MIS equity), delivery (CNC
  equity) and F&O; the business categories show their P&L net of them.

Only sales and closing trades inside the year count; the lots and positions they close are replayed
from the account's first trade in those instruments.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from orders.models import Trade
from orders.positions import PositionFigures, apply_fill
from orders.reports.charges import ChargeTotals, executed_order_charges
from orders.reports.periods import IST, IST_OFFSET, FinancialYear
from orders.reports.trades import FILL_COLUMNS, Fill, InstrumentInfo, instruments_of

ZERO = Decimal(0)
INTRADAY, SHORT_TERM, LONG_TERM, FNO, UNMATCHED = "intraday", "stcg", "ltcg", "fno", "unmatched"
CATEGORY_LABELS = {
    INTRADAY: "Intraday equity (speculative business income)",
    SHORT_TERM: "Short-term capital gains (equity held 12 months or less)",
    LONG_TERM: "Long-term capital gains (equity held more than 12 months)",
    FNO: "F&O (non-speculative business income)",
    UNMATCHED: "Sales without a matching purchase on record",
}
CHARGE_GROUPS = {"equity_intraday": INTRADAY, "equity_delivery": "delivery", "futures": FNO, "options": FNO}


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One realised line: a day's intraday match, a FIFO lot sold, an F&O close, or an unmatched sale."""

    category: str
    instrument: InstrumentInfo
    bought_on: date | None
    sold_on: date
    quantity: int
    buy_value: Decimal | None
    sell_value: Decimal
    pnl: Decimal | None

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]


@dataclass(slots=True)
class CategoryTotals:
    pnl: Decimal = ZERO
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO
    turnover: Decimal = ZERO  # F&O: the sum of absolute P&L of closing trades
    lines: int = 0


@dataclass(frozen=True, slots=True)
class TaxReport:
    year: FinancialYear
    lines: list[TaxLine]
    categories: dict[str, CategoryTotals]
    charges: dict[str, ChargeTotals]  # "intraday", "delivery", "fno"

    @property
    def speculative_net(self) -> Decimal:
        return self.categories[INTRADAY].pnl - self.charges[INTRADAY].total

    @property
    def fno_net(self) -> Decimal:
        return self.categories[FNO].pnl - self.charges[FNO].total


def held_long_term(bought_on: date, sold_on: date) -> bool:
    """Whether shares bought on ``bought_on`` and sold on ``sold_on`` were held more than 12 months."""
    try:
        anniversary = bought_on.replace(year=bought_on.year + 1)
    except ValueError:  # bought on 29 February: twelve months end on 28 February
        anniversary = date(bought_on.year + 1, 2, 28)
    return sold_on > anniversary


def tax_report(*, account, year: FinancialYear) -> TaxReport:
    """Return ``account``'s tax P&L for ``year`` (module docstring). One query for the trades, one for
    their instruments."""
    start = datetime.combine(year.first_day, time.min, tzinfo=IST)
    end = datetime.combine(year.last_day + timedelta(days=1), time.min, tzinfo=IST)
    mine = Trade.objects.filter(account_id=account.pk)
    traded = set(mine.filter(executed_at__gte=start, executed_at__lt=end).values_list("instrument_id", flat=True))
    rows = (
        mine.filter(executed_at__lt=end, instrument_id__in=traded)
        .order_by("executed_at", "id")
        .values_list(*FILL_COLUMNS)
        if traded
        else []
    )
    fills = [Fill._make((*row, (row[7] + IST_OFFSET).date())) for row in rows]
    instruments = instruments_of({f.instrument_id for f in fills})
    lines: list[TaxLine] = []
    equity: dict[int, list[Fill]] = defaultdict(list)
    derivatives: list[Fill] = []
    for fill in fills:
        (derivatives if instruments[fill.instrument_id].is_derivative else equity[fill.instrument_id]).append(fill)
    for instrument_id, equity_fills in equity.items():
        lines.extend(_equity_lines(instruments[instrument_id], equity_fills, year))
    lines.extend(_fno_lines(instruments, derivatives, year))
    lines.sort(key=lambda line: (line.sold_on, line.instrument.tradingsymbol, line.category))
    return TaxReport(year, lines, _categories(lines), _charges(instruments, fills, year))


def _day_groups(fills: list[Fill]) -> list[tuple[date, int, Decimal, int, Decimal]]:
    """``(day, bought, buy value, sold, sell value)`` for each IST day of ``fills`` (in order)."""
    days: dict[date, list] = {}
    for fill in fills:
        day = days.setdefault(fill.day, [0, ZERO, 0, ZERO])
        if fill.side == "BUY":
            day[0] += fill.quantity
            day[1] += fill.quantity * fill.price
        else:
            day[2] += fill.quantity
            day[3] += fill.quantity * fill.price
    return [(day, *figures) for day, figures in days.items()]


def _equity_lines(instrument: InstrumentInfo, fills: list[Fill], year: FinancialYear) -> list[TaxLine]:
    lots: deque[list] = deque()  # [bought on, quantity left, price]
    lines = []
    for day, bought, buy_value, sold, sell_value in _day_groups(fills):
        in_year = year.first_day <= day <= year.last_day
        buy_price = buy_value / bought if bought else ZERO
        sell_price = sell_value / sold if sold else ZERO
        matched = min(bought, sold)
        if matched and in_year:
            lines.append(
                TaxLine(
                    INTRADAY,
                    instrument,
                    day,
                    day,
                    matched,
                    buy_price * matched,
                    sell_price * matched,
                    (sell_price - buy_price) * matched,
                )
            )
        if bought > matched:
            lots.append([day, bought - matched, buy_price])
        to_sell = sold - matched
        while to_sell and lots:
            lot = lots[0]
            taken = min(to_sell, lot[1])
            if in_year:
                category = LONG_TERM if held_long_term(lot[0], day) else SHORT_TERM
                cost, proceeds = lot[2] * taken, sell_price * taken
                lines.append(TaxLine(category, instrument, lot[0], day, taken, cost, proceeds, proceeds - cost))
            lot[1] -= taken
            to_sell -= taken
            if not lot[1]:
                lots.popleft()
        if to_sell and in_year:
            lines.append(TaxLine(UNMATCHED, instrument, None, day, to_sell, None, sell_price * to_sell, None))
    return lines


def _fno_lines(instruments: dict[int, InstrumentInfo], fills: list[Fill], year: FinancialYear) -> list[TaxLine]:
    positions: dict[tuple[int, str], PositionFigures] = {}
    lines = []
    for fill in fills:
        pair = (fill.instrument_id, fill.product)
        before = positions.get(pair, PositionFigures())
        after, realised = apply_fill(before, side=fill.side, quantity=fill.quantity, price=fill.price)
        positions[pair] = after
        reducing = before.net_quantity and (before.net_quantity > 0) != (fill.side == "BUY")
        closed = min(fill.quantity, abs(before.net_quantity)) if reducing else 0
        if closed and year.first_day <= fill.day <= year.last_day:
            opened, closing = before.average_price * closed, fill.price * closed
            buy_value, sell_value = (opened, closing) if fill.side == "SELL" else (closing, opened)
            lines.append(
                TaxLine(FNO, instruments[fill.instrument_id], None, fill.day, closed, buy_value, sell_value, realised)
            )
    return lines


def _categories(lines: list[TaxLine]) -> dict[str, CategoryTotals]:
    totals = {category: CategoryTotals() for category in CATEGORY_LABELS}
    for line in lines:
        bucket = totals[line.category]
        bucket.lines += 1
        bucket.sell_value += line.sell_value
        bucket.buy_value += line.buy_value or ZERO
        bucket.pnl += line.pnl or ZERO
        if line.category == FNO and line.pnl is not None:
            bucket.turnover += abs(line.pnl)
    return totals


def _charges(instruments: dict[int, InstrumentInfo], fills: list[Fill], year: FinancialYear) -> dict[str, ChargeTotals]:
    """The charges of every order executed in the year, by category (intraday, delivery, F&O)."""
    orders: dict[int, list] = {}
    for fill in fills:
        if not year.first_day <= fill.day <= year.last_day:
            continue
        order = orders.get(fill.order_id)
        if order is None:
            segment = instruments[fill.instrument_id].segment(fill.product)
            orders[fill.order_id] = [segment, fill.side, fill.quantity * fill.price]
        else:
            order[2] += fill.quantity * fill.price
    groups = {INTRADAY: ChargeTotals(), "delivery": ChargeTotals(), FNO: ChargeTotals()}
    for segment, side, turnover in orders.values():
        groups[CHARGE_GROUPS[segment]].add(executed_order_charges(segment=segment, side=side, turnover=turnover))
    return groups
