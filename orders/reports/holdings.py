"""Holdings: the account's delivery holdings at its broker (``BrokerAdapter.holdings()``, the broker
contract, for the paper exchange as for any broker), valued at the last quotes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.adapters.base import BrokerHolding
from brokers.adapters.registry import adapter_for
from marketdata.quotes import get_quotes
from orders.reports.trades import InstrumentInfo, instruments_of

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PERCENT = Decimal("0.01")


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part * HUNDRED / whole).quantize(PERCENT) if whole else None


@dataclass(frozen=True, slots=True)
class HoldingRow:
    instrument: InstrumentInfo
    quantity: int
    t1_quantity: int
    average_price: Decimal
    ltp: Decimal | None
    close: Decimal | None  # the previous session's close, the base of the day's change

    @property
    def invested(self) -> Decimal:
        return self.average_price * self.quantity

    @property
    def value(self) -> Decimal | None:
        return None if self.ltp is None else self.ltp * self.quantity

    @property
    def pnl(self) -> Decimal | None:
        return None if self.ltp is None else (self.ltp - self.average_price) * self.quantity

    @property
    def pnl_percent(self) -> Decimal | None:
        return None if self.pnl is None else _percent(self.pnl, self.invested)

    @property
    def day_change(self) -> Decimal | None:
        if self.ltp is None or self.close is None:
            return None
        return (self.ltp - self.close) * self.quantity

    @property
    def day_change_percent(self) -> Decimal | None:
        if self.ltp is None or self.close is None:
            return None
        return _percent(self.ltp - self.close, self.close)


@dataclass(frozen=True, slots=True)
class Holdings:
    rows: list[HoldingRow]

    @property
    def invested(self) -> Decimal:
        return sum((row.invested for row in self.rows), ZERO)

    @property
    def value(self) -> Decimal:
        return sum((row.value if row.value is not None else row.invested for row in self.rows), ZERO)

    @property
    def pnl(self) -> Decimal:
        return sum((row.pnl or ZERO for row in self.rows), ZERO)

    @property
    def pnl_percent(self) -> Decimal | None:
        return _percent(self.pnl, self.invested)

    @property
    def day_change(self) -> Decimal:
        return sum((row.day_change or ZERO for row in self.rows), ZERO)

    @property
    def instrument_ids(self) -> list[int]:
        return [row.instrument.id for row in self.rows]


def holdings_get(*, account) -> Holdings:
    """Return ``account``'s holdings at its broker, each valued at the last quote (the broker's own last
    and close prices where our quote store has none). Raises the broker's errors (signed out,
    unreachable) as ``BrokerError``s."""
    held: list[BrokerHolding] = adapter_for(account).holdings()
    instruments = instruments_of(h.instrument_id for h in held)
    quotes = get_quotes([h.instrument_id for h in held]) if held else {}
    rows = []
    for h in held:
        instrument = instruments.get(h.instrument_id)
        if instrument is None:
            continue
        quote = quotes.get(h.instrument_id)
        rows.append(
            HoldingRow(
                instrument=instrument,
                quantity=h.quantity,
                t1_quantity=h.t1_quantity,
                average_price=h.average_price,
                ltp=quote.ltp if quote is not None else h.last_price,
                close=quote.close if quote is not None and quote.close is not None else h.close_price,
            )
        )
    rows.sort(key=lambda row: (row.instrument.tradingsymbol, row.instrument.exchange))
    return Holdings(rows)
