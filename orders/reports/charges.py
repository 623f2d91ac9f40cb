"""Charges of executed orders summed for a report: each order's charges come from ``brokers.charges``
(the backtester's computation) on its turnover, segment and side; a report adds them up by day, symbol
or category."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from brokers.charges import Charges, ChargeSchedule, Segment, order_charges

CHARGE_PARTS = ("brokerage", "stt", "exchange", "sebi", "stamp", "gst")
CHARGE_LABELS = {
    "brokerage": "Brokerage",
    "stt": "STT",
    "exchange": "Exchange transaction charges",
    "sebi": "SEBI fees",
    "stamp": "Stamp duty",
    "gst": "GST",
}
DEFAULT_SCHEDULE = ChargeSchedule()


@dataclass(slots=True)
class ChargeTotals:
    """A running sum of charges, part by part (each to the paisa, as each order's are)."""

    brokerage: Decimal = Decimal("0.00")
    stt: Decimal = Decimal("0.00")
    exchange: Decimal = Decimal("0.00")
    sebi: Decimal = Decimal("0.00")
    stamp: Decimal = Decimal("0.00")
    gst: Decimal = Decimal("0.00")

    def add(self, charges: Charges | ChargeTotals) -> None:
        self.brokerage += charges.brokerage
        self.stt += charges.stt
        self.exchange += charges.exchange
        self.sebi += charges.sebi
        self.stamp += charges.stamp
        self.gst += charges.gst

    @property
    def total(self) -> Decimal:
        return self.brokerage + self.stt + self.exchange + self.sebi + self.stamp + self.gst

    def parts(self) -> list[tuple[str, str, Decimal]]:
        """``(name, label, amount)`` for each part, in the order a contract note lists them."""
        return [(f.name, CHARGE_LABELS[f.name], getattr(self, f.name)) for f in fields(self)]

    def as_json(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in CHARGE_PARTS} | {"total": str(self.total)}


def executed_order_charges(
    *, segment: Segment, side: str, turnover: Decimal, schedule: ChargeSchedule = DEFAULT_SCHEDULE
) -> Charges:
    """The charges of one executed order (``brokers.charges.order_charges`` on the default schedule)."""
    return order_charges(schedule=schedule, segment=segment, side=side, turnover=turnover)
