"""Errors of the trader's UI (watchlists)."""

from __future__ import annotations

from core.errors import ApplicationError


class WatchlistError(ApplicationError):
    code = "watchlist_error"
    status = 422
