"""Watchlist writes. Every function checks that the watchlist belongs to ``user``.

Reordering locks the rows it renumbers (``select_for_update``) and writes each new position with a
conditional update, so two tabs moving lists at once leave a consistent order."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max, Model, QuerySet
from django.utils import timezone

from marketdata.models import Instrument
from terminal.errors import WatchlistError
from terminal.models import (
    MAX_ITEMS_PER_WATCHLIST,
    MAX_WATCHLIST_NAME,
    MAX_WATCHLISTS_PER_USER,
    Watchlist,
    WatchlistItem,
)

DEFAULT_WATCHLIST = "Watchlist 1"
MOVES = {"up": -1, "left": -1, "down": 1, "right": 1}


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


def _clean_name(name: object) -> str:
    """A name of 1 to MAX_WATCHLIST_NAME printable characters (surrounding spaces dropped)."""
    if not isinstance(name, str):
        raise WatchlistError("A watchlist name must be text.", code="watchlist_name_invalid", extra={"field": "name"})
    name = name.strip()
    if any(not ch.isprintable() for ch in name):
        raise WatchlistError(
            "A watchlist name cannot hold control characters.", code="watchlist_name_invalid", extra={"field": "name"}
        )
    if not name or len(name) > MAX_WATCHLIST_NAME:
        raise WatchlistError(
            f"A watchlist name needs 1 to {MAX_WATCHLIST_NAME} characters.",
            code="watchlist_name_invalid",
            extra={"field": "name"},
        )
    return name


def _name_taken(name: str) -> WatchlistError:
    return WatchlistError(
        f"You already have a watchlist named {name!r}.", code="watchlist_name_taken", extra={"field": "name"}
    )


def _direction(direction: object) -> int:
    step = MOVES.get(direction) if isinstance(direction, str) else None
    if step is None:
        raise WatchlistError(
            "Move up, down, left or right.", code="move_direction_invalid", extra={"field": "direction"}
        )
    return step


def _renumber(rows: QuerySet, moved_pk: int | None = None, step: int = 0) -> None:
    """Number the locked ``rows`` 0, 1, 2… in their order, the ``moved_pk`` row ``step`` places on
    (clamped at either end). Each write is conditional on the position read under the lock."""
    ordered: list[Model] = list(rows.select_for_update().order_by("position", "id"))
    if moved_pk is not None:
        index = next((i for i, row in enumerate(ordered) if row.pk == moved_pk), None)
        if index is not None:
            target = min(max(index + step, 0), len(ordered) - 1)
            ordered.insert(target, ordered.pop(index))
    for position, row in enumerate(ordered):
        old = row.position  # type: ignore[attr-defined]
        if old != position:
            updated = type(row)._default_manager.filter(pk=row.pk, position=old).update(position=position)
            if updated != 1:
                raise WatchlistError("The order changed meanwhile: try again.", code="watchlist_conflict")


def watchlist_create(*, user, name: object) -> Watchlist:
    """Create a watchlist at the end; raise WatchlistError on a bad or duplicate name or past the limit."""
    name = _clean_name(name)
    with transaction.atomic():
        count = Watchlist.objects.select_for_update().filter(user=user).count()
        if count >= MAX_WATCHLISTS_PER_USER:
            raise WatchlistError(f"You can have at most {MAX_WATCHLISTS_PER_USER} watchlists.", code="watchlist_limit")
        top = Watchlist.objects.filter(user=user).aggregate(top=Max("position"))["top"]
        try:
            with transaction.atomic():
                return Watchlist.objects.create(user=user, name=name, position=0 if top is None else top + 1)
        except IntegrityError:
            raise _name_taken(name) from None


def watchlist_rename(*, user, watchlist_id: int, name: object) -> Watchlist:
    name = _clean_name(name)
    with transaction.atomic():
        watchlist = _own(user, watchlist_id)
        if watchlist.name == name:
            return watchlist
        try:
            with transaction.atomic():
                Watchlist.objects.filter(pk=watchlist.pk, user=user).update(name=name)
        except IntegrityError:
            raise _name_taken(name) from None
        watchlist.name = name
        return watchlist


def watchlist_delete(*, user, watchlist_id: int) -> None:
    """Delete a watchlist and its rows; the user's last watchlist stays."""
    with transaction.atomic():
        lists = Watchlist.objects.select_for_update().filter(user=user)
        watchlist = _own(user, watchlist_id)
        if lists.count() <= 1:
            raise WatchlistError("Your last watchlist cannot be deleted.", code="watchlist_last")
        watchlist.delete()
        _renumber(Watchlist.objects.filter(user=user))


def watchlist_move(*, user, watchlist_id: int, direction: object) -> None:
    """Move a watchlist one place left or right among the user's lists."""
    step = _direction(direction)
    with transaction.atomic():
        watchlist = _own(user, watchlist_id)
        _renumber(Watchlist.objects.filter(user=user), watchlist.pk, step)


def watchlist_move_instrument(*, user, watchlist_id: int, instrument_id: int, direction: object) -> None:
    """Move an instrument one row up or down in its watchlist."""
    step = _direction(direction)
    with transaction.atomic():
        watchlist = _own(user, watchlist_id)
        item = WatchlistItem.objects.filter(watchlist=watchlist, instrument_id=instrument_id).first()
        if item is None:
            raise WatchlistError(f"Instrument {instrument_id} is not in this watchlist.", code="instrument_not_found")
        _renumber(WatchlistItem.objects.filter(watchlist=watchlist), item.pk, step)


def watchlist_open(*, user, watchlist_id: int) -> Watchlist:
    """Remember ``watchlist_id`` as the list the user has open."""
    watchlist = _own(user, watchlist_id)
    Watchlist.objects.filter(pk=watchlist.pk, user=user).update(opened_at=timezone.now())
    return watchlist


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
