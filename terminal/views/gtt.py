"""The GTT panel of the terminal (good-till-triggered orders, for a broker that has them): the form,
the broker's GTT book, placing and deleting. It goes through orders.services like the API; these views
only parse the form and render the panel (the shared panel helpers are in terminal.views.trading)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from brokers.adapters.base import BrokerRejected
from core.client_ip import client_ip
from core.errors import ApplicationError
from core.parse import int_or_none
from marketdata.models import Instrument, InstrumentType
from orders import services
from orders.models import Side
from orders.schemas import order_quantity
from terminal.models import WatchlistItem
from terminal.views.trading import _account_for_panel, _decimal, _gtt_offered, _panel


@login_required
@require_GET
def gtt_panel(request: HttpRequest, account_id: int) -> HttpResponse:
    """The GTT panel of the trading panel (``trading-panel`` with the name ``gtt`` resolves here)."""
    account = _account_for_panel(request, account_id, "view")
    if not _gtt_offered(account):  # the page exists; this account's broker has no GTT: refused, 422
        refusal = BrokerRejected("This account's broker has no GTT orders.", code="broker_cannot_gtt")
        return _gtt_panel(request, account, status=422, gtt_list_error=refusal)
    return _gtt_panel(request, account)


def _gtt_panel(request: HttpRequest, account, *, status: int = 200, **extra) -> HttpResponse:
    """The GTT panel: the form and the broker's GTT book; a broker that cannot list (signed out,
    unreachable) shows why. For a broker without GTT (no tab offers it) only the refusal shows."""
    gtts, list_error = [], None
    if _gtt_offered(account):
        try:
            gtts = services.gtt_list(actor=request.user, account_id=account.pk)
        except ApplicationError as error:
            list_error = error
    symbols = {g.instrument_id for g in gtts if g.instrument_id is not None}
    ticks = dict(Instrument.objects.filter(pk__in=symbols).values_list("pk", "tick_size"))
    context = {
        "gtts": [{"gtt": g, "tick": ticks.get(g.instrument_id, Decimal("0.05"))} for g in gtts],
        "gtt_list_error": list_error,
        "gtt_instruments": _gtt_instruments(request),
        "gtt_data": {"kind": "single", "side": Side.BUY, "product": "CNC", "quantity": "1"},
        "gtt_products": (("CNC", "CNC (delivery)"), ("NRML", "NRML (F&O carry)")),
        # The form's one-time token, the placing's idempotency key: a refused form keeps it, a placed one
        # comes back with a fresh one.
        "gtt_form_token": uuid.uuid4().hex,
    } | extra
    return _panel(request, account, "gtt", status=status, **context)


def _gtt_instruments(request: HttpRequest) -> list[Instrument]:
    """The instruments a GTT can be set on from the panel: the tradable ones in the user's watchlists."""
    watched = WatchlistItem.objects.filter(watchlist__user=request.user).values("instrument_id")
    return list(
        Instrument.objects.filter(pk__in=watched, is_active=True)
        .exclude(instrument_type=InstrumentType.INDEX)
        .order_by("exchange", "tradingsymbol")
    )


# The price fields each kind of GTT reads; the form holds both sets, and the other kind's are ignored.
GTT_KIND_FIELDS = {
    "single": ("trigger_price", "price"),
    "oco": ("stoploss_trigger", "stoploss_price", "target_trigger", "target_price"),
}


def _gtt_request(data) -> services.GttRequest:
    """The GTT form as a request: numbers read as the order ticket reads them (codes naming the field)."""
    kind = data.get("kind", "")
    prices = {name: _decimal(data.get(name), name) for name in GTT_KIND_FIELDS.get(kind, ())}
    return services.GttRequest(
        instrument_id=int_or_none(data.get("instrument")) or 0,
        kind=kind,
        side=data.get("side", ""),
        quantity=order_quantity(data.get("quantity") or ""),
        product=data.get("product", ""),
        **prices,
    )


@login_required
@require_POST
def gtt_place(request: HttpRequest, account_id: int) -> HttpResponse:
    """Place the GTT form's GTT at the account's broker; the panel comes back with it listed, or with
    the refusal (code and message, 422 or the broker's status) and the form as it was filled."""
    account = _account_for_panel(request, account_id, "trade")
    data = request.POST.dict()
    token = data.get("form_token", "")[:64]
    try:
        trigger_id = services.gtt_place(
            actor=request.user,
            account_id=account.pk,
            request=_gtt_request(data),
            idempotency_key=f"web:{token}" if token else None,
            ip=client_ip(request),
        )
    except ApplicationError as error:
        if not request.htmx:
            return redirect("home")
        kept = {"gtt_form_token": token} if token else {}
        return _gtt_panel(request, account, status=_refusal_status(error), error=error, gtt_data=data, **kept)
    if not request.htmx:
        return redirect("home")
    return _gtt_panel(request, account, gtt_done=f"GTT {trigger_id} placed.")


@login_required
@require_POST
def gtt_delete(request: HttpRequest, account_id: int, trigger_id: str) -> HttpResponse:
    account = _account_for_panel(request, account_id, "trade")
    try:
        services.gtt_delete(actor=request.user, account_id=account.pk, trigger_id=trigger_id, ip=client_ip(request))
    except ApplicationError as error:
        if not request.htmx:
            return redirect("home")
        return _gtt_panel(request, account, status=_refusal_status(error), error=error)
    if not request.htmx:
        return redirect("home")
    return _gtt_panel(request, account, gtt_done=f"GTT {trigger_id} deleted.")


def _refusal_status(error: ApplicationError) -> int:
    """A refusal's status for the panel: its own 4xx, else 422 (htmx swaps 4xx fragments only)."""
    return error.status if 400 <= error.status < 500 else 422
