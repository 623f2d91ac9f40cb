"""Making alerts and publishing quotes for the alerts tests."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from alerts.services import alert_create
from marketdata.listeners import dispatch
from marketdata.quotes import Quote, set_quotes


def make_alert(user, instrument, condition="ltp_above", level="1000", **values):
    return alert_create(
        actor=user, values={"instrument": instrument.pk, "condition": condition, "level": level, **values}
    )


def tick(instrument, ltp, *, close=None, book=None) -> Quote:
    """Publish one quote as the feed does (stored, then to the tick listeners), or to ``book`` only."""
    quote = Quote(
        instrument_id=instrument.pk,
        ltp=Decimal(str(ltp)),
        ts=timezone.now(),
        close=None if close is None else Decimal(str(close)),
    )
    set_quotes([quote])
    if book is None:
        dispatch([quote])
    else:
        book.on_quotes([quote], {})
    return quote
