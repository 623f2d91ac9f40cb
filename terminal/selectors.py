"""Reads for the trader UI."""

from __future__ import annotations

from django.db.models import QuerySet

from terminal.models import Watchlist, WatchlistItem


def watchlist_list(*, user) -> QuerySet[Watchlist]:
    return Watchlist.objects.filter(user=user)


def watchlist_items(*, watchlist: Watchlist) -> QuerySet[WatchlistItem]:
    return watchlist.items.select_related("instrument")


def watchlist_opened(*, user) -> Watchlist | None:
    """The list the user last opened (None if they never chose one)."""
    return Watchlist.objects.filter(user=user, opened_at__isnull=False).order_by("-opened_at").first()
