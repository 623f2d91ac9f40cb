"""Margin by product at the paper exchange.

Simplification (docs/orders.md): real brokers compute F&O margin with SPAN plus exposure margin per
contract; the symbol master carries no SPAN file, so F&O margin is a flat percentage of the contract
value (``PAPER_FO_MARGIN_PCT``), and long options pay their full premium.
- CNC: the full value.
- MIS (cash): value divided by ``PAPER_MIS_LEVERAGE``.
- NRML / MIS (F&O): value x ``PAPER_FO_MARGIN_PCT`` / 100, MIS at the same leverage again; long options: the premium.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings


def margin_rate(*, product: str, instrument_type: str, side: str) -> Decimal:
    """Return the fraction of an order's value that is blocked as margin."""
    leverage = Decimal(settings.PAPER_MIS_LEVERAGE)
    if instrument_type in {"CE", "PE"} and side == "BUY":
        return Decimal(1)
    if instrument_type in {"FUT", "CE", "PE"}:
        rate = Decimal(settings.PAPER_FO_MARGIN_PCT) / 100
        return rate / leverage if product == "MIS" else rate
    return Decimal(1) / leverage if product == "MIS" else Decimal(1)
