"""The ledger's margin estimate by product, for brokers that publish no per-order margin the order
path can wait for (the paper exchange; a live broker's own RMS has the final word and refuses an
order it cannot cover, as ``BrokerInsufficientMargin``).

Real brokers compute F&O margin with SPAN plus exposure margin per contract; the symbol master
carries no SPAN file, so F&O margin is a flat percentage of the contract value, and long options
pay their full premium:
- CNC: the full value.
- MIS (cash): value divided by the intraday leverage.
- NRML / MIS (F&O): value x ``fo_margin_pct`` / 100, MIS at the same leverage again; long options: the premium.
"""

from __future__ import annotations

from decimal import Decimal


def product_margin_rate(
    *, product: str, instrument_type: str, side: str, mis_leverage: int, fo_margin_pct: int
) -> Decimal:
    """Return the fraction of an order's value that is blocked as margin."""
    leverage = Decimal(mis_leverage)
    if instrument_type in {"CE", "PE"} and side == "BUY":
        return Decimal(1)
    if instrument_type in {"FUT", "CE", "PE"}:
        rate = Decimal(fo_margin_pct) / 100
        return rate / leverage if product == "MIS" else rate
    return Decimal(1) / leverage if product == "MIS" else Decimal(1)
