"""Reads for the trader UI."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from marketdata.models import Instrument
from terminal.models import Watchlist, WatchlistItem

SEARCH_LIMIT = 20


def watchlist_list(*, user) -> QuerySet[Watchlist]:
    return Watchlist.objects.filter(user=user)


def watchlist_items(*, watchlist: Watchlist) -> QuerySet[WatchlistItem]:
    return watchlist.items.select_related("instrument")


def instrument_search(*, query: str, limit: int = SEARCH_LIMIT) -> QuerySet[Instrument]:
    """Active instruments whose symbol or name matches ``query``; exact and prefix matches first."""
    query = query.strip().upper()
    if not query:
        return Instrument.objects.none()
    return (
        Instrument.objects.filter(is_active=True)
        .filter(Q(tradingsymbol__icontains=query) | Q(name__icontains=query))
        .annotate(
            rank=Case(
                When(tradingsymbol__iexact=query, then=Value(0)),
                When(tradingsymbol__istartswith=query, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "instrument_type", "expiry", "tradingsymbol")[:limit]
    )
