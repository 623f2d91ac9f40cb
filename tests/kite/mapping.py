"""Kite mappings for test instruments, as the daily instruments import writes them."""

from __future__ import annotations

from brokers.instrument_map import instrument_map_invalidate


def map_for_kite(instrument, *, token: int, tradingsymbol: str | None = None, exchange: str | None = None) -> None:
    """Put ``instrument`` in the Kite mapping (as the daily instruments import does) and reload the map."""
    from django.utils import timezone

    from brokers.models import BrokerInstrument

    BrokerInstrument.objects.create(
        broker="kite",
        instrument=instrument,
        token=str(token),
        tradingsymbol=tradingsymbol or instrument.tradingsymbol,
        exchange=exchange or instrument.exchange,
        listed_at=timezone.now(),
    )
    instrument_map_invalidate()
