"""Errors of the trader's UI (watchlists, saved baskets)."""

from __future__ import annotations

from core.errors import ApplicationError


class WatchlistError(ApplicationError):
    code = "watchlist_error"
    status = 422


class BasketError(ApplicationError):
    code = "basket_error"
    status = 422


class ChartError(ApplicationError):
    """A chart request (its studies, periods, timeframe or page) that cannot be answered."""

    code = "chart_error"
    status = 422
