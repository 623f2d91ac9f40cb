"""The option chain page: an underlying's calls and puts for one expiry, strikes around the money, with
last price, open interest and implied volatility. LTP cells update over the page's tick socket (the
shared quote fragment); the chain body is re-rendered every few seconds for OI and IV, which is also the
page's fallback while the socket is down."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from marketdata.errors import InvalidExpiry, MarketDataError, UnknownUnderlying
from marketdata.fanout import quote_context
from marketdata.options import DEFAULT_STRIKES_EACH_SIDE, option_chain, option_underlyings

TEMPLATE = "terminal/option_chain.html"
STRIKE_CHOICES = (5, 10, 15, 20)


def _expiry(value: str) -> date | None:
    """Parse ``?expiry=YYYY-MM-DD`` (empty: the nearest expiry). Raises InvalidExpiry for anything else."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidExpiry(
            f"expiry {value[:20]!r} is not a date like 2026-12-29", extra={"expiry": value[:20]}
        ) from None


def _strikes(value: str) -> int:
    try:
        return int(value) if int(value) in STRIKE_CHOICES else DEFAULT_STRIKES_EACH_SIDE
    except ValueError:
        return DEFAULT_STRIKES_EACH_SIDE


def _cells(side):
    """The quote-cell context of one side of a row (None while the option has no quote yet)."""
    if side is None or side.quote is None:
        return None
    return quote_context(side.quote, oob=False)


@login_required
@require_GET
def option_chain_page(request: HttpRequest) -> HttpResponse:
    """``/options/?underlying=NIFTY&expiry=2026-12-29&strikes=10``; HTMX requests get the chain table.

    An unknown underlying answers 404, an expiry that is not a date or not one of the underlying's 422,
    each with the page explaining it."""
    underlyings = option_underlyings()
    requested = request.GET.get("underlying", "").strip().upper()[:40]
    default = "NIFTY" if "NIFTY" in underlyings else (underlyings[0] if underlyings else "")
    underlying = requested or default
    strikes = _strikes(request.GET.get("strikes", ""))
    context = {
        "underlyings": underlyings,
        "underlying": underlying,
        "strikes": strikes,
        "strike_choices": STRIKE_CHOICES,
    }
    if not underlying:
        return render(request, TEMPLATE, context)
    try:
        chain = option_chain(
            underlying=underlying, expiry=_expiry(request.GET.get("expiry", "").strip()), strikes_each_side=strikes
        )
    except (UnknownUnderlying, InvalidExpiry) as exc:
        return _error(request, context, exc)
    rows = [{"row": row, "call_cells": _cells(row.call), "put_cells": _cells(row.put)} for row in chain.rows]
    context.update(
        chain=chain, rows=rows, spot_cells=quote_context(chain.spot_quote, oob=False) if chain.spot_quote else None
    )
    if request.htmx:
        return render(request, TEMPLATE + "#chain", context)
    return render(request, TEMPLATE, context)


def _error(request: HttpRequest, context: dict, exc: MarketDataError) -> HttpResponse:
    context["error"] = exc
    template = TEMPLATE + "#chain" if request.htmx else TEMPLATE
    return render(request, template, context, status=exc.status)
