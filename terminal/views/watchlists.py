"""The trader's pages. Views parse input, call one service or selector, and render; HTMX requests
get the partial they swap, plain requests the whole page (every hx-post form works without JS)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import trades_nowhere
from brokers.selectors import account_access_list_for_user
from core.parse import int_or_none
from marketdata.fanout import quote_context
from marketdata.quotes import get_quotes
from marketdata.selectors import instrument_search
from terminal.errors import WatchlistError
from terminal.models import Watchlist
from terminal.selectors import watchlist_items, watchlist_list
from terminal.services.watchlists import (
    watchlist_add_instrument,
    watchlist_create,
    watchlist_delete,
    watchlist_ensure_default,
    watchlist_move,
    watchlist_move_instrument,
    watchlist_open,
    watchlist_remove_instrument,
    watchlist_rename,
)
from terminal.views.trading import current_account, may_trade_in, trading_context

SEARCH_LIMIT = 20


def _own_watchlist_or_404(request: HttpRequest, watchlist_id: int) -> None:
    """Another user's watchlist (or none at all) is a 404, never a hint that it exists."""
    if not Watchlist.objects.filter(user=request.user, pk=watchlist_id).exists():
        raise Http404("No such watchlist.")


def _symbol_parts(instrument) -> tuple[str, ...]:
    """The trading symbol in the pieces a narrow cell may wrap between: a derivative's underlying, then
    its expiry, strike and type (``ULTRACEMCO``, ``26DEC11300CE``), never inside the strike."""
    symbol, underlying = instrument.tradingsymbol, instrument.underlying
    if instrument.is_derivative and underlying and symbol.startswith(underlying) and len(symbol) > len(underlying):
        return (underlying, symbol[len(underlying) :])
    return (symbol,)


def _watchlist_context(
    request: HttpRequest, watchlist_id: int | None, *, account=None, can_trade: bool | None = None
) -> dict:
    """The watchlist panel's context; ``account`` is the page's broker account when the caller has
    already looked it up (with each instrument's ``tradable``, it decides which rows offer B/S), and
    ``can_trade`` whether the user may trade on it, when known."""
    # One query for the lists; the default list, the last opened one and the shown one come from it.
    watchlists = list(watchlist_list(user=request.user)) or [watchlist_ensure_default(user=request.user)]
    if watchlist_id is None:
        opened = max((w for w in watchlists if w.opened_at), key=lambda w: w.opened_at, default=None)
        watchlist_id = opened.pk if opened else None
    current = next((w for w in watchlists if w.pk == watchlist_id), watchlists[0])
    items = list(watchlist_items(watchlist=current))
    quotes = get_quotes([item.instrument_id for item in items])
    rows = [
        {
            "instrument": item.instrument,
            "symbol_parts": _symbol_parts(item.instrument),
            "cells": quote_context(quotes[item.instrument_id], oob=False) if item.instrument_id in quotes else None,
        }
        for item in items
    ]
    if can_trade is None:
        # The user's accounts with their trade flags in one statement, rather than guardian's querysets.
        accesses = account_access_list_for_user(user=request.user)
        account = account or current_account(request, accesses)
        can_trade = may_trade_in(accesses, account)
    return {"watchlists": watchlists, "watchlist": current, "rows": rows, "can_trade": can_trade}


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if trades_nowhere(user=request.user):
        # A Compliance member (and nothing else) cannot use the trading dashboard: they land on the reports.
        return redirect("compliance:home")
    # The user's accounts with their trade flags, read once: the current account, the switcher and
    # the trade buttons all answer from them.
    accesses = account_access_list_for_user(user=request.user)
    account = current_account(request, accesses)
    chosen = int_or_none(request.GET.get("wl"))
    if chosen is not None:
        try:
            watchlist_open(user=request.user, watchlist_id=chosen)
        except WatchlistError:
            chosen = None  # another user's list, or a deleted one: show the remembered list instead
    context = trading_context(request, account, accesses)
    context |= _watchlist_context(request, chosen, account=account, can_trade=context["can_trade"])
    return render(request, "terminal/dashboard.html", context)


@login_required
@require_GET
def watchlist_panel(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    """The watchlist table; also the polling fallback while the live socket is down."""
    _own_watchlist_or_404(request, watchlist_id)
    context = _watchlist_context(request, watchlist_id)
    return render(request, "terminal/dashboard.html#watchlist", context)


@login_required
@require_GET
def instrument_search_results(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    _own_watchlist_or_404(request, watchlist_id)
    query = request.GET.get("q", "")[:40]
    results = instrument_search(query=query, limit=SEARCH_LIMIT) if query.strip() else []
    return render(
        request,
        "terminal/dashboard.html#search-results",
        {"results": results, "query": query, "watchlist_id": watchlist_id},
    )


@login_required
@require_POST
def watchlist_add(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    _own_watchlist_or_404(request, watchlist_id)
    error = None
    instrument_id = int_or_none(request.POST.get("instrument"))
    try:
        if instrument_id is None:
            raise WatchlistError("Choose an instrument to add.", code="instrument_required")
        watchlist_add_instrument(user=request.user, watchlist_id=watchlist_id, instrument_id=instrument_id)
    except WatchlistError as exc:
        error = exc
    return _after_change(request, watchlist_id, error)


def _after_change(request: HttpRequest, watchlist_id: int | None, error: WatchlistError | None) -> HttpResponse:
    """The answer to a change: for a plain POST the page again (redirected, or rendered with the error
    and 422), for HTMX the panel (422 with the error)."""
    if not request.htmx and error is None:
        return redirect(f"/?wl={watchlist_id}" if watchlist_id is not None else "/")
    context = _watchlist_context(request, watchlist_id)
    context["error"] = error
    status = 422 if error else 200
    if not request.htmx:
        context = trading_context(request, current_account(request)) | context
        return render(request, "terminal/dashboard.html", context, status=status)
    return render(request, "terminal/dashboard.html#watchlist", context, status=status)


@login_required
@require_POST
def watchlist_remove(request: HttpRequest, watchlist_id: int, instrument_id: int) -> HttpResponse:
    _own_watchlist_or_404(request, watchlist_id)
    error = None
    try:
        watchlist_remove_instrument(user=request.user, watchlist_id=watchlist_id, instrument_id=instrument_id)
    except WatchlistError as exc:
        error = exc
    return _after_change(request, watchlist_id, error)


@login_required
@require_POST
def watchlist_new(request: HttpRequest) -> HttpResponse:
    """Create a list from the panel's form and open it."""
    error, watchlist_id = None, None
    try:
        watchlist = watchlist_create(user=request.user, name=request.POST.get("name", ""))
        watchlist_id = watchlist_open(user=request.user, watchlist_id=watchlist.pk).pk
    except WatchlistError as exc:
        error = exc
    return _after_change(request, watchlist_id, error)


@login_required
@require_POST
def watchlist_rename_view(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    _own_watchlist_or_404(request, watchlist_id)
    error = None
    try:
        watchlist_rename(user=request.user, watchlist_id=watchlist_id, name=request.POST.get("name", ""))
    except WatchlistError as exc:
        error = exc
    return _after_change(request, watchlist_id, error)


@login_required
@require_POST
def watchlist_delete_view(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    """Delete a list; the panel then shows the first remaining one."""
    _own_watchlist_or_404(request, watchlist_id)
    try:
        watchlist_delete(user=request.user, watchlist_id=watchlist_id)
    except WatchlistError as exc:
        return _after_change(request, watchlist_id, exc)
    return _after_change(request, None, None)


@login_required
@require_POST
def watchlist_move_view(request: HttpRequest, watchlist_id: int) -> HttpResponse:
    """Move the list one tab left or right."""
    _own_watchlist_or_404(request, watchlist_id)
    error = None
    try:
        watchlist_move(user=request.user, watchlist_id=watchlist_id, direction=request.POST.get("direction"))
    except WatchlistError as exc:
        error = exc
    return _after_change(request, watchlist_id, error)


@login_required
@require_POST
def watchlist_move_row(request: HttpRequest, watchlist_id: int, instrument_id: int) -> HttpResponse:
    """Move an instrument one row up or down."""
    _own_watchlist_or_404(request, watchlist_id)
    error = None
    try:
        watchlist_move_instrument(
            user=request.user,
            watchlist_id=watchlist_id,
            instrument_id=instrument_id,
            direction=request.POST.get("direction"),
        )
    except WatchlistError as exc:
        error = exc
    return _after_change(request, watchlist_id, error)
