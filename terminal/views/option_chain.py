"""The option chain page: an underlying's calls and puts for one expiry, strikes around the money, with
last price, open interest, implied volatility and Greeks. LTP cells update over the page's tick socket
(the shared quote fragment); the chain body is re-rendered every few seconds for OI, IV and Greeks,
which is also the page's fallback while the socket is down.

From the chain a trader opens the order ticket on an option (B/S), or adds legs to the strategy
builder (+B/+S, or a template), which shows the payoff and the margin and places the legs as a basket
(``option_strategy``, POST only; terminal/services/option_strategy.py does the work)."""

from __future__ import annotations

import functools
import uuid
from datetime import date
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET, require_POST

from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.selectors import account_get_for_user
from core.client_ip import client_ip
from core.errors import ApplicationError
from core.parse import int_or_none
from marketdata.errors import InvalidExpiry, MarketDataError, UnknownUnderlying
from marketdata.fanout import quote_context
from marketdata.options import DEFAULT_STRIKES_EACH_SIDE, OptionChain, option_chain, option_underlyings
from terminal.services.option_strategy import (
    MAX_LEGS,
    TEMPLATES,
    LegInput,
    StrategyAnalysis,
    StrategyInvalid,
    analyse,
    parse_legs,
    place_strategy,
    template_legs,
)
from terminal.views.trading import SESSION_ACCOUNT, current_account

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


GREEK_ORDER = ("vega", "gamma", "theta", "delta")  # the calls' order, from the outside in; puts mirror it


def _greek_cells(side, *, mirrored: bool) -> str:
    """An option's Greek cells: delta 2 places, gamma 4, theta and vega 2, a dash without. Built here,
    not by template filters: 168 of them a render cost more than the rest of the chain."""
    greeks = side.greeks if side is not None else None
    itm = " itm" if side is not None and side.itm else ""
    texts = {"delta": "—", "gamma": "—", "theta": "—", "vega": "—"}
    if greeks is not None:
        texts = {
            "delta": f"{greeks.delta:.2f}",
            "gamma": f"{greeks.gamma:.4f}",
            "theta": f"{greeks.theta:.2f}",
            "vega": f"{greeks.vega:.2f}",
        }
    order = reversed(GREEK_ORDER) if mirrored else GREEK_ORDER
    return format_html_join("", '<td class="num greek {}{}">{}</td>', ((name, itm, texts[name]) for name in order))


def _trade_buttons(side, strategy_url: str) -> str:
    """B and S (the ticket, opened by terminal.js) and +B and +S (a leg of the strategy builder)."""
    symbol, pk = side.instrument.tradingsymbol, side.instrument.pk
    return format_html(
        '<span class="trade-buttons">'
        '<button type="button" class="buy" data-ticket-side="BUY" aria-label="Buy {0}" '
        'title="Buy: open the ticket">B</button>'
        '<button type="button" class="sell" data-ticket-side="SELL" aria-label="Sell {0}" '
        'title="Sell: open the ticket">S</button>'
        '<button type="submit" form="strategy-form" class="leg-add buy" name="add" value="{1}:BUY" hx-post="{2}" '
        'hx-include="#strategy-form" hx-target="#strategy" hx-swap="outerHTML" '
        'aria-label="Add a bought {0} to the strategy" title="Add a buy leg to the strategy">+B</button>'
        '<button type="submit" form="strategy-form" class="leg-add sell" name="add" value="{1}:SELL" hx-post="{2}" '
        'hx-include="#strategy-form" hx-target="#strategy" hx-swap="outerHTML" '
        'aria-label="Add a sold {0} to the strategy" title="Add a sell leg to the strategy">+S</button>'
        "</span>",
        symbol,
        pk,
        strategy_url,
    )


def _cells(side):
    """The quote-cell context of one side of a row (None while the option has no quote yet)."""
    if side is None or side.quote is None:
        return None
    return quote_context(side.quote, oob=False)


def _default_underlying(underlyings: list[str]) -> str:
    return "NIFTY" if "NIFTY" in underlyings else (underlyings[0] if underlyings else "")


def _account_and_trade(request: HttpRequest):
    """The page's broker account (as ``trading.current_account`` picks it) and whether the user may
    trade it: one permission query for the account remembered in the session (the chain re-renders
    every 5 s), and no session write."""
    remembered = request.GET.get("account") or request.POST.get("account") or request.session.get(SESSION_ACCOUNT)
    account_id = int_or_none(remembered)
    if account_id is not None and 0 < account_id < 2**63:
        try:
            return account_get_for_user(user=request.user, account_id=account_id, access="trade"), True
        except BrokerAccountForbidden:
            pass  # viewable, not tradable: current_account returns it
        except BrokerAccountNotFound:
            account_id = None
    account = current_account(request)
    if account is None:
        return None, False
    if account_id is None:
        request.session[SESSION_ACCOUNT] = account.pk  # the next refresh takes the one-query path
    try:
        account_get_for_user(user=request.user, account_id=account.pk, access="trade")
    except (BrokerAccountForbidden, BrokerAccountNotFound):
        return account, False
    return account, True


def _chain_context(request: HttpRequest, params) -> tuple[dict, MarketDataError | None]:
    """The chain page's context for ``params`` (the query or the builder's form): underlying, expiry,
    strikes, and the chain with its rows; or the error that stopped it (unknown underlying, bad expiry)."""
    underlyings = functools.cache(option_underlyings)  # read only by the page and the error: not every 5 s
    requested = str(params.get("underlying", "")).strip().upper()[:40]
    underlying = requested or _default_underlying(underlyings())
    strikes = _strikes(str(params.get("strikes", "")))
    account, trade = _account_and_trade(request)
    context = {
        "underlyings": underlyings,
        "underlying": underlying,
        "strikes": strikes,
        "strike_choices": STRIKE_CHOICES,
        "account": account,
        "can_trade": trade,
        "templates": [(name, label) for name, (label, _) in TEMPLATES.items()],
        "max_legs": MAX_LEGS,
        "strategy_url": reverse("option-strategy"),
    }
    if not underlying:
        return context, None
    try:
        expiry = _expiry(str(params.get("expiry", "")).strip()[:40])
        chain = option_chain(underlying=underlying, expiry=expiry, strikes_each_side=strikes)
    except (UnknownUnderlying, InvalidExpiry) as exc:
        return context, exc
    trade, strategy_url = context["can_trade"], context["strategy_url"]
    rows = [
        {
            "row": row,
            "call_cells": _cells(row.call),
            "put_cells": _cells(row.put),
            "call_greeks": _greek_cells(row.call, mirrored=False),
            "put_greeks": _greek_cells(row.put, mirrored=True),
            "call_buttons": _trade_buttons(row.call, strategy_url) if trade and row.call else "",
            "put_buttons": _trade_buttons(row.put, strategy_url) if trade and row.put else "",
        }
        for row in chain.rows
    ]
    context.update(
        chain=chain, rows=rows, spot_cells=quote_context(chain.spot_quote, oob=False) if chain.spot_quote else None
    )
    return context, None


@login_required
@require_GET
def option_chain_page(request: HttpRequest) -> HttpResponse:
    """``/options/?underlying=NIFTY&expiry=2026-12-29&strikes=10``; HTMX requests get the chain table.

    An unknown underlying answers 404, an expiry that is not a date or not one of the underlying's 422,
    each with the page explaining it."""
    context, error = _chain_context(request, request.GET)
    if error is not None:
        return _error(request, context, error)
    context["strategy"] = _strategy_context([], None)
    if request.htmx:
        return render(request, TEMPLATE + "#chain", context)
    return render(request, TEMPLATE, context)


def _error(request: HttpRequest, context: dict, exc: MarketDataError) -> HttpResponse:
    context["error"] = exc
    template = TEMPLATE + "#chain" if request.htmx else TEMPLATE
    return render(request, template, context, status=exc.status)


# --- the strategy builder --------------------------------------------------------------------------------
def _posted_legs(post) -> list[LegInput]:
    """The legs in the builder's form, in order (fields ``leg_instrument``, ``leg_side``, ``leg_lots``,
    ``leg_price`` repeated once per leg), with the clicked action applied: ``remove`` (a leg's index),
    ``add`` ("<instrument id>:BUY" or ":SELL", one lot at the last price)."""
    instruments, sides = post.getlist("leg_instrument"), post.getlist("leg_side")
    lots, prices = post.getlist("leg_lots"), post.getlist("leg_price")
    count = max(len(instruments), len(sides), len(lots))
    if count > MAX_LEGS + 1:  # one more than allowed is refused by name below; far more is not read
        raise StrategyInvalid(
            f"A strategy has at most {MAX_LEGS} legs.", code="too_many_legs", extra={"field": "legs", "max": MAX_LEGS}
        )

    def at(values: list[str], n: int) -> str:
        return values[n] if n < len(values) else ""

    legs = [LegInput(at(instruments, n), at(sides, n), at(lots, n), at(prices, n)) for n in range(count)]
    remove = post.get("remove")
    if remove is not None:
        index = int(remove) if remove.isdigit() and len(remove) < 4 else -1
        legs = [leg for n, leg in enumerate(legs) if n != index]
    add = post.get("add")
    if add is not None:
        instrument, _, side = add.partition(":")
        legs.append(LegInput(instrument, side, "1"))
    return legs


def _strategy_context(legs: list[LegInput], analysis: StrategyAnalysis | None, **extra) -> dict:
    """The builder's own context: the legs as typed (so a refused form keeps them) and their analysis."""
    error, results, refused = extra.get("error"), extra.get("results"), extra.get("placed_error")
    rows = []
    for n, leg in enumerate(legs):
        checked = analysis.legs[n] if analysis is not None and n < len(analysis.legs) else None
        row = {"index": n, "input": leg, "leg": checked}
        if error is not None and error.extra.get("leg") == n:
            row["error_field"] = error.extra["field"].rsplit(".", 1)[-1]
        if results is not None and n < len(results):
            row["result"] = results[n]
        if refused is not None:
            row["refusal"] = refused["legs"].get(n)
        rows.append(row)
    context = {"legs": rows, "analysis": analysis, "chart": payoff_chart(analysis) if analysis else None}
    context.update(extra)
    context.setdefault("form_token", uuid.uuid4().hex)
    return context


@login_required
@require_POST
def option_strategy(request: HttpRequest) -> HttpResponse:
    """The strategy builder's form: add, remove or re-price legs, apply a template, or place the legs
    (``action=place``) as a basket. Answers the builder (the whole page without HTMX); a bad leg is a
    422 naming its field, and nothing is placed."""
    context, chain_error = _chain_context(request, request.POST)
    if chain_error is not None:
        return _error(request, context, chain_error)
    chain: OptionChain | None = context.get("chain")
    action = request.POST.get("action", "")
    form_token = request.POST.get("form_token", "")[:64]
    legs: list[LegInput] = []
    status, analysis, results, placed_error = 200, None, None, None
    try:
        if chain is None:
            raise StrategyInvalid("There are no options to build a strategy from.", code="no_options")
        template = request.POST.get("template")
        legs = template_legs(template, chain) if template else _posted_legs(request.POST)
        if action == "clear":
            legs = []
        checked = parse_legs(legs, chain)
        account = context["account"]
        if checked:
            analysis = analyse(legs=checked, chain=chain, account=account)
        if action == "place":
            results, placed_error, status = _place(request, account, checked, form_token)
    except StrategyInvalid as error:
        context["strategy"] = _strategy_context(legs, None, error=error, form_token=form_token or None)
        return _render_strategy(request, context, status=error.status)
    placed = results is not None
    context["strategy"] = _strategy_context(
        legs,
        analysis,
        results=results,
        placed_error=placed_error,
        # A new token once a basket went out: the next submit is a new basket, not a repeat.
        form_token=None if placed else form_token or None,
    )
    return _render_strategy(request, context, status=status)


def _place(request: HttpRequest, account, legs, form_token: str):
    """Place the legs; return (each leg's result, or None; the error that refused the basket; status)."""
    if not legs:
        raise StrategyInvalid("Add a leg first.", code="no_legs", extra={"field": "legs"})
    if account is None:
        raise StrategyInvalid("This account cannot place orders.", code="account_cannot_trade")
    try:
        account = account_get_for_user(user=request.user, account_id=account.pk, access="trade")
    except (BrokerAccountForbidden, BrokerAccountNotFound):
        raise StrategyInvalid("This account cannot place orders.", code="account_cannot_trade") from None
    try:
        results = place_strategy(
            actor=request.user, account=account, legs=legs, form_token=form_token, ip=client_ip(request)
        )
    except ApplicationError as error:  # the basket was refused before any leg was placed
        refused = {leg["leg"]: leg for leg in error.extra.get("legs", [])}
        return None, {"error": error, "legs": refused}, error.status if 400 <= error.status < 500 else 422
    return results, None, 200


def _render_strategy(request: HttpRequest, context: dict, *, status: int) -> HttpResponse:
    template = TEMPLATE + "#strategy" if request.htmx else TEMPLATE
    return render(request, template, context, status=status)


# --- the payoff chart (inline SVG, drawn here: no script, so the page's CSP holds) ------------------------
CHART_WIDTH, CHART_HEIGHT = 720, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 60, 28, 16, 30


def payoff_chart(analysis: StrategyAnalysis) -> dict:
    """The SVG geometry of the payoff at expiry (and today, when every leg has an IV): polyline points,
    the zero line, breakevens, the underlying's price and axis labels, in a fixed viewBox."""
    xs = [s for s, _ in analysis.expiry_curve]
    ys = [v for _, v in analysis.expiry_curve] + [v for _, v in analysis.today_curve or []]
    low_x, high_x = xs[0], xs[-1]
    low_y, high_y = min(min(ys), Decimal(0)), max(max(ys), Decimal(0))
    pad = (high_y - low_y) * Decimal("0.08") or Decimal(1)
    low_y, high_y = low_y - pad, high_y + pad
    inner_w, inner_h = CHART_WIDTH - PAD_LEFT - PAD_RIGHT, CHART_HEIGHT - PAD_TOP - PAD_BOTTOM

    def px(s: Decimal) -> float:
        return round(PAD_LEFT + float((s - low_x) / (high_x - low_x)) * inner_w, 1)

    def py(v: Decimal) -> float:
        return round(PAD_TOP + float((high_y - v) / (high_y - low_y)) * inner_h, 1)

    def points(values) -> str:
        return " ".join(f"{px(s)},{py(v)}" for s, v in values)

    zero = py(Decimal(0))
    area = f"{px(low_x)},{zero} {points(analysis.expiry_curve)} {px(high_x)},{zero}"
    ticks = [low_x + (high_x - low_x) * Decimal(i) / 4 for i in range(5)]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PAD_LEFT,
        "right": CHART_WIDTH - PAD_RIGHT,
        "top": PAD_TOP,
        "bottom": CHART_HEIGHT - PAD_BOTTOM,
        "zero": zero,
        "plot_width": inner_w,
        "above_height": round(max(zero - PAD_TOP, 0), 1),
        "below_height": round(max(CHART_HEIGHT - PAD_BOTTOM - zero, 0), 1),
        "expiry": points(analysis.expiry_curve),
        "today": points(analysis.today_curve) if analysis.today_curve else "",
        "area": area,
        "x_ticks": [{"x": px(t), "label": t.quantize(Decimal(1))} for t in ticks],
        "y_ticks": [{"y": py(v), "label": _short_amount(v)} for v in (high_y - pad, Decimal(0), low_y + pad)],
        "breakevens": [{"x": px(b), "label": b} for b in analysis.payoff.breakevens if low_x <= b <= high_x],
        "spot": _spot_mark(analysis, px, low_x, high_x),
    }


def _short_amount(value: Decimal) -> str:
    """An axis label short enough for a phone: 950, 22.3k, -1.25L (lakh), 3.4Cr (crore)."""
    size = abs(value)
    sign = "-" if value < 0 else ""
    for unit, scale in (("Cr", Decimal("1e7")), ("L", Decimal("1e5")), ("k", Decimal("1e3"))):
        if size >= scale:
            return f"{sign}{float(size / scale):.3g}{unit}"
    return f"{sign}{size:.0f}"


def _spot_mark(analysis: StrategyAnalysis, px, low_x: Decimal, high_x: Decimal) -> dict | None:
    underlying = analysis.underlying_price
    if underlying is None or not low_x <= underlying <= high_x:
        return None
    return {"x": px(underlying), "label": underlying}
