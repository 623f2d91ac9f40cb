"""Watchlist writes. Every function checks that the watchlist belongs to ``user``."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from marketdata.models import Instrument
from terminal.errors import WatchlistError
from terminal.models import MAX_ITEMS_PER_WATCHLIST, MAX_WATCHLISTS_PER_USER, Watchlist, WatchlistItem

DEFAULT_WATCHLIST = "Watchlist 1"


def watchlist_ensure_default(*, user) -> Watchlist:
    """Return the user's first watchlist, creating an empty one if they have none."""
    existing = Watchlist.objects.filter(user=user).first()
    if existing is not None:
        return existing
    watchlist, _ = Watchlist.objects.get_or_create(user=user, name=DEFAULT_WATCHLIST)
    return watchlist


def _own(user, watchlist_id: int) -> Watchlist:
    watchlist = Watchlist.objects.filter(user=user, pk=watchlist_id).first()
    if watchlist is None:
        raise WatchlistError(f"Watchlist {watchlist_id} was not found.", code="watchlist_not_found")
    return watchlist


def watchlist_create(*, user, name: str) -> Watchlist:
    """Create a watchlist; raise WatchlistError on an empty or duplicate name or past the per-user limit."""
    name = name.strip()
    if not name or len(name) > 40:
        raise WatchlistError("A watchlist name needs 1 to 40 characters.", code="watchlist_name_invalid")
    with transaction.atomic():
        count = Watchlist.objects.select_for_update().filter(user=user).count()
        if count >= MAX_WATCHLISTS_PER_USER:
            raise WatchlistError(f"You can have at most {MAX_WATCHLISTS_PER_USER} watchlists.", code="watchlist_limit")
        try:
            with transaction.atomic():
                return Watchlist.objects.create(user=user, name=name, position=count)
        except IntegrityError:
            raise WatchlistError(f"You already have a watchlist named {name!r}.", code="watchlist_name_taken") from None


def watchlist_add_instrument(*, user, watchlist_id: int, instrument_id: int) -> WatchlistItem:
    """Add an instrument (idempotent: adding it twice returns the existing item).

    Raises WatchlistError for another user's watchlist, an unknown instrument or a full watchlist.
    """
    with transaction.atomic():
        watchlist = _own(user, watchlist_id)
        instrument = Instrument.objects.filter(pk=instrument_id, is_active=True).first()
        if instrument is None:
            raise WatchlistError(f"Instrument {instrument_id} was not found.", code="instrument_not_found")
        existing = WatchlistItem.objects.filter(watchlist=watchlist, instrument=instrument).first()
        if existing is not None:
            return existing
        items = WatchlistItem.objects.select_for_update().filter(watchlist=watchlist)
        if items.count() >= MAX_ITEMS_PER_WATCHLIST:
            raise WatchlistError(
                f"A watchlist holds at most {MAX_ITEMS_PER_WATCHLIST} instruments.", code="watchlist_full"
            )
        position = (items.aggregate(top=Max("position"))["top"] or 0) + 1
        return WatchlistItem.objects.create(watchlist=watchlist, instrument=instrument, position=position)


def watchlist_remove_instrument(*, user, watchlist_id: int, instrument_id: int) -> None:
    """Remove an instrument; removing one that is not there is not an error."""
    watchlist = _own(user, watchlist_id)
    WatchlistItem.objects.filter(watchlist=watchlist, instrument_id=instrument_id).delete()
