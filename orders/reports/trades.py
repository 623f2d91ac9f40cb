"""The trades a report replays: one query, in execution order, as plain tuples (no model instances),
with the instruments they name read once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from brokers.charges import Segment, segment_of
from marketdata.models import Instrument
from orders.models import Trade
from orders.reports.periods import IST_OFFSET


class Fill(NamedTuple):
    """One trade as a report reads it; ``day`` is its IST calendar day."""

    id: int
    order_id: int
    instrument_id: int
    product: str
    side: str
    quantity: int
    price: Decimal
    executed_at: datetime
    day: date


class InstrumentInfo(NamedTuple):
    id: int
    exchange: str
    tradingsymbol: str
    instrument_type: str
    tick_size: Decimal

    @property
    def symbol(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_derivative(self) -> bool:
        return self.instrument_type in ("FUT", "CE", "PE")

    def segment(self, product: str) -> Segment:
        return segment_of(instrument_type=self.instrument_type, product=product)


FILL_COLUMNS = ("id", "order_id", "instrument_id", "product", "side", "quantity", "price", "executed_at")


def fills_replayed(*, account, start: datetime, end: datetime, history_to: datetime) -> list[Fill]:
    """Return every fill of ``account`` before ``history_to`` in the (instrument, product) pairs the
    account traded in [start, end), oldest first: the history a report replays to know each pair's
    position when the range opens. Two index range scans (trade_account_executed): the pairs traded in
    the range, then the fills of their instruments."""
    mine = Trade.objects.filter(account_id=account.pk)
    pairs = set(
        mine.filter(executed_at__gte=start, executed_at__lt=end).values_list("instrument_id", "product").distinct()
    )
    if not pairs:
        return []
    rows = (
        mine.filter(executed_at__lt=history_to, instrument_id__in={instrument for instrument, _ in pairs})
        .order_by("executed_at", "id")
        .values_list(*FILL_COLUMNS)
    )
    return [Fill._make((*row, (row[7] + IST_OFFSET).date())) for row in rows if (row[2], row[3]) in pairs]


def instruments_of(ids: Iterable[int]) -> dict[int, InstrumentInfo]:
    """The instruments ``ids`` name, by id, in one query."""
    rows = Instrument.objects.filter(pk__in=set(ids)).values_list(
        "id", "exchange", "tradingsymbol", "instrument_type", "tick_size"
    )
    return {row[0]: InstrumentInfo(*row) for row in rows}
