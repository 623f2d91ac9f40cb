"""Margin by product at the paper exchange: the ledger's estimate (``brokers.margin``) with the
paper exchange's settings (``PAPER_MIS_LEVERAGE``, ``PAPER_FO_MARGIN_PCT``; docs/orders.md)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from brokers.margin import product_margin_rate


def margin_rate(*, product: str, instrument_type: str, side: str) -> Decimal:
    """Return the fraction of an order's value that is blocked as margin."""
    return product_margin_rate(
        product=product,
        instrument_type=instrument_type,
        side=side,
        mis_leverage=settings.PAPER_MIS_LEVERAGE,
        fo_margin_pct=settings.PAPER_FO_MARGIN_PCT,
    )
