"""Indian trading charges on each executed order, by segment, from a configurable schedule: one
computation for the backtester, the trader's P&L and tax reports, and anything quoting an order's cost.

Each executed order (each slice of a sliced order) pays, on its turnover ``quantity x price`` (for options
the premium turnover):

- brokerage: ``min(turnover x percent, cap)`` when a percent is set, else the flat amount per order;
- STT (securities transaction tax): a percent of turnover on the buy side, the sell side, or both;
- exchange transaction charges: a percent of turnover, both sides;
- SEBI turnover fees: rupees per crore (10^7) of turnover, both sides;
- stamp duty: a percent of turnover on the buy side;
- GST: 18 % of (brokerage + exchange transaction charges + SEBI fees).

The total is rounded to the paisa (half up). The default schedule is Zerodha's published charges list
(zerodha.com/charges, as reproduced with its NSE rates by select.finology.in's "How to use Zerodha
brokerage calculator", after NSE's transaction-charge revision of 1 October 2024): brokerage 0.03 % capped
at Rs 20 for equity intraday and futures, Rs 20 flat for options, none on delivery; NSE transaction
charges 0.00297 % (equity), 0.00173 % (futures), 0.03503 % of premium (options); SEBI Rs 10 a crore;
stamp duty on the buy side 0.015 % (delivery), 0.003 % (intraday), 0.002 % (futures), 0.003 % (options);
GST 18 % of brokerage + transaction charges + SEBI fees. STT is the Finance (No. 2) Act 2024's, in force
from 1 October 2024: 0.1 % both sides on delivery, 0.025 % sell side intraday, 0.02 % sell side on
futures, 0.1 % of premium sell side on options. Brokers round STT to the rupee on the contract note; this
module rounds every charge to the paisa per order. Exchanges and brokers revise these: every number is a
setting (a backtest's ``settings["charges"]``; ``ChargeSchedule`` for anyone else).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Segment = Literal["equity_intraday", "equity_delivery", "futures", "options"]
SEGMENTS: tuple[Segment, ...] = ("equity_intraday", "equity_delivery", "futures", "options")
PAISA = Decimal("0.01")
CRORE = Decimal(10_000_000)

Rate = Annotated[Decimal, Field(ge=0, le=1, max_digits=12, decimal_places=10)]
Rupees = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=14, decimal_places=4)]


class SegmentCharges(BaseModel):
    """One segment's schedule. Rates are fractions (``0.00025`` is 0.025 %)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokerage_flat: Rupees = Decimal(0)
    brokerage_rate: Rate | None = None
    brokerage_cap: Rupees | None = None
    stt_buy: Rate = Decimal(0)
    stt_sell: Rate = Decimal(0)
    exchange_rate: Rate = Decimal(0)
    sebi_per_crore: Rupees = Decimal(10)
    stamp_buy: Rate = Decimal(0)
    gst_rate: Rate = Decimal("0.18")


class ChargeSchedule(BaseModel):
    """A schedule for every segment; ``enabled: false`` charges nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    equity_intraday: SegmentCharges = SegmentCharges(
        brokerage_rate=Decimal("0.0003"),
        brokerage_cap=Decimal(20),
        stt_sell=Decimal("0.00025"),
        exchange_rate=Decimal("0.0000297"),
        stamp_buy=Decimal("0.00003"),
    )
    equity_delivery: SegmentCharges = SegmentCharges(
        stt_buy=Decimal("0.001"),
        stt_sell=Decimal("0.001"),
        exchange_rate=Decimal("0.0000297"),
        stamp_buy=Decimal("0.00015"),
    )
    futures: SegmentCharges = SegmentCharges(
        brokerage_rate=Decimal("0.0003"),
        brokerage_cap=Decimal(20),
        stt_sell=Decimal("0.0002"),
        exchange_rate=Decimal("0.0000173"),
        stamp_buy=Decimal("0.00002"),
    )
    options: SegmentCharges = SegmentCharges(
        brokerage_flat=Decimal(20),
        stt_sell=Decimal("0.001"),
        exchange_rate=Decimal("0.0003503"),
        stamp_buy=Decimal("0.00003"),
    )

    @classmethod
    def none(cls) -> ChargeSchedule:
        return cls(enabled=False)

    def for_segment(self, segment: Segment) -> SegmentCharges:
        return getattr(self, segment)


@dataclass(frozen=True, slots=True)
class Charges:
    """The charges of one executed order, each to the paisa; ``total`` is what the account pays."""

    brokerage: Decimal
    stt: Decimal
    exchange: Decimal
    sebi: Decimal
    stamp: Decimal
    gst: Decimal

    @property
    def total(self) -> Decimal:
        return self.brokerage + self.stt + self.exchange + self.sebi + self.stamp + self.gst

    def as_json(self) -> dict[str, Any]:
        return {name: str(getattr(self, name)) for name in ("brokerage", "stt", "exchange", "sebi", "stamp", "gst")}


NO_CHARGES = Charges(*(Decimal("0.00"),) * 6)


def segment_of(*, instrument_type: str, product: str) -> Segment:
    """The charges segment of an order: options (CE/PE), futures, else equity delivery (CNC) or intraday."""
    if instrument_type in ("CE", "PE"):
        return "options"
    if instrument_type == "FUT":
        return "futures"
    return "equity_delivery" if product == "CNC" else "equity_intraday"


def _paisa(amount: Decimal) -> Decimal:
    return amount.quantize(PAISA, rounding=ROUND_HALF_UP)


def order_charges(*, schedule: ChargeSchedule, segment: Segment, side: str, turnover: Decimal) -> Charges:
    """Return the charges of one executed order of ``turnover`` rupees on ``side`` ("BUY" or "SELL")."""
    if not schedule.enabled or turnover <= 0:
        return NO_CHARGES
    s = schedule.for_segment(segment)
    if s.brokerage_rate is not None:
        brokerage = turnover * s.brokerage_rate
        if s.brokerage_cap is not None:
            brokerage = min(brokerage, s.brokerage_cap)
    else:
        brokerage = s.brokerage_flat
    buying = side == "BUY"
    stt = turnover * (s.stt_buy if buying else s.stt_sell)
    exchange = turnover * s.exchange_rate
    sebi = turnover * s.sebi_per_crore / CRORE
    stamp = turnover * s.stamp_buy if buying else Decimal(0)
    brokerage, exchange, sebi = _paisa(brokerage), _paisa(exchange), _paisa(sebi)
    gst = _paisa((brokerage + exchange + sebi) * s.gst_rate)
    return Charges(brokerage, _paisa(stt), exchange, sebi, _paisa(stamp), gst)
