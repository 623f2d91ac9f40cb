"""Baskets: build, save, edit, preview and place several orders at once on one account.

The editor is one form of leg rows (``leg-<i>-<field>``; "Add leg" and each row's "Remove" re-render it,
so it works as a plain POST too). Its margin and charges come from ``orders.preview`` as the fields
change; saving checks every leg first and saves all or nothing (``terminal.services.baskets``); placing
goes through ``orders.services.place_basket`` and answers leg by leg."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from core.client_ip import client_ip
from core.errors import ApplicationError
from core.parse import int_or_none
from marketdata.models import Instrument, InstrumentType
from orders import services
from orders.errors import OrderInvalid
from orders.models import OrderType, Side, Source
from orders.preview import MAX_LEGS, order_preview
from orders.schemas import order_lots
from terminal.errors import BasketError
from terminal.models import SavedBasket, WatchlistItem
from terminal.services.baskets import basket_delete, basket_get, basket_requests, basket_save
from terminal.views.trading import _account_for_panel, _decimal, can_trade, preview_status

TEMPLATE = "terminal/baskets.html"
LEG_FIELDS = ("instrument", "side", "lots", "order_type", "product", "price", "trigger_price")
PRODUCTS = (("MIS", "MIS"), ("CNC", "CNC"), ("NRML", "NRML"))  # intraday, delivery, F&O carry


def _instruments(request: HttpRequest, legs: list[dict] | None = None) -> list[Instrument]:
    """The instruments a leg can be on: the tradable ones in the user's watchlists, and those the
    ``legs`` already name (a saved basket's, or a strategy's legs from the option chain)."""
    watched = WatchlistItem.objects.filter(watchlist__user=request.user).values("instrument_id")
    named = {i for leg in legs or () if (i := int_or_none(leg.get("instrument"))) is not None and 0 < i < 2**63}
    return list(
        Instrument.objects.filter(Q(pk__in=watched) | Q(pk__in=named), is_active=True)
        .exclude(instrument_type=InstrumentType.INDEX)
        .order_by("exchange", "tradingsymbol")
    )


def _empty_leg(instruments: list[Instrument]) -> dict:
    first = instruments[0] if instruments else None
    return {
        "instrument": str(first.pk) if first else "",
        "side": Side.BUY,
        "lots": "1",
        "order_type": OrderType.LIMIT,
        "product": "NRML" if first is not None and first.is_derivative else "MIS",
        "price": "",
        "trigger_price": "",
    }


def _raw_legs(data) -> list[dict]:
    """The leg rows as posted (``leg-<i>-<field>``), at most ``MAX_LEGS``, as the strings sent."""
    count = min(max(int_or_none(data.get("legs")) or 0, 0), MAX_LEGS)
    return [{field: data.get(f"leg-{i}-{field}", "") for field in LEG_FIELDS} for i in range(count)]


def _saved_legs(basket: SavedBasket) -> list[dict]:
    return [
        {
            "instrument": str(leg.instrument_id),
            "side": leg.side,
            "lots": str(leg.quantity // max(leg.instrument.lot_size, 1)),
            "order_type": leg.order_type,
            "product": leg.product,
            "price": "" if leg.price is None else f"{leg.price.normalize():f}",
            "trigger_price": "" if leg.trigger_price is None else f"{leg.trigger_price.normalize():f}",
        }
        for leg in basket.legs.select_related("instrument")
    ]


def _requests(raw_legs: list[dict]) -> list[services.OrderRequest]:
    """Read the rows into order requests. Raises OrderInvalid ``basket_invalid`` naming each row that
    cannot be read (its field in ``extra.field``), as ``check_legs`` names a leg that breaks a rule."""
    if not raw_legs:
        raise OrderInvalid("A basket needs at least one leg.", code="basket_empty")
    ids = {i for leg in raw_legs if (i := int_or_none(leg["instrument"])) is not None and 0 < i < 2**63}
    instruments = Instrument.objects.in_bulk(ids)
    requests, refused = [], []
    for index, leg in enumerate(raw_legs):
        instrument = instruments.get(int_or_none(leg["instrument"]) or 0)
        try:
            if instrument is None:
                raise OrderInvalid(
                    f"Instrument {leg['instrument']!r} was not found.",
                    code="instrument_not_found",
                    extra={"field": "instrument"},
                )
            requests.append(
                services.OrderRequest(
                    instrument_id=instrument.pk,
                    side=leg["side"],
                    quantity=order_lots(leg["lots"], instrument.lot_size) * max(instrument.lot_size, 1),
                    order_type=leg["order_type"],
                    product=leg["product"],
                    price=_decimal(leg["price"], "price"),
                    trigger_price=_decimal(leg["trigger_price"], "trigger_price"),
                )
            )
        except ApplicationError as error:
            refused.append({"leg": index, "code": error.code, "message": error.message, "extra": error.extra})
    if refused:
        raise OrderInvalid(
            f"{len(refused)} of the basket's {len(raw_legs)} legs are invalid.",
            code="basket_invalid",
            extra={"legs": refused},
        )
    return requests


def _leg_errors(error: ApplicationError) -> dict[int, dict]:
    """A ``basket_invalid`` refusal by row: {row: {"code", "message", "field"}}; the field is the one
    the refusal names (``extra.field``, else the pre-trade rule's subject), for the row to mark."""
    errors = {}
    for leg in error.extra.get("legs", []) if error.code == "basket_invalid" else []:
        extra = leg.get("extra") or {}
        field = extra.get("field") or next(
            (f for f in ("quantity", "price", "trigger_price", "product") if f in extra), ""
        )
        errors[leg["leg"]] = {
            "code": leg["code"],
            "message": leg["message"],
            "field": "lots" if field == "quantity" else field,
        }
    return errors


def _context(request: HttpRequest, account, **extra) -> dict:
    """The page's context; each leg row carries its refusal (``error``) when saving refused it."""
    instruments = _instruments(request, extra.get("legs"))
    baskets = list(SavedBasket.objects.filter(user=request.user, account=account).prefetch_related("legs__instrument"))
    context = {
        "account": account,
        "baskets": baskets,
        "instruments": instruments,
        "sides": Side.choices,
        "order_types": OrderType.choices,
        "products": PRODUCTS,
        "can_trade": can_trade(request, account),
        "editing": None,
        "name": "",
        "legs": [_empty_leg(instruments)],
        "leg_errors": {},
        "error": None,
        "form_token": uuid.uuid4().hex,
    } | extra
    errors = context["leg_errors"]
    context["legs"] = [leg | {"error": errors.get(row)} for row, leg in enumerate(context["legs"])]
    return context


@login_required
@require_GET
def basket_page(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's saved baskets and the editor: empty, the basket ``?basket=<id>`` to edit, or the
    legs given as ``?legs=<n>&leg-<i>-<field>=...`` (another page's strategy, to save and place)."""
    account = _account_for_panel(request, account_id, "trade")
    extra: dict = {}
    if request.GET.get("legs"):
        extra = {"legs": _raw_legs(request.GET) or [_empty_leg(_instruments(request))]}
    elif request.GET.get("basket"):
        try:
            basket = basket_get(user=request.user, account=account, basket_id=int_or_none(request.GET["basket"]) or 0)
        except BasketError:
            raise Http404("No such basket.") from None
        extra = {"editing": basket, "name": basket.name, "legs": _saved_legs(basket)}
    return render(request, TEMPLATE, _context(request, account, **extra))


@login_required
@require_POST
def basket_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    """The editor's form: ``action`` is ``add``, ``remove:<row>`` (re-render the editor) or ``save``
    (check every leg, then save all or nothing; 422 with each refused row marked)."""
    account = _account_for_panel(request, account_id, "trade")
    legs = _raw_legs(request.POST)
    action = request.POST.get("action", "save")
    editing_id = int_or_none(request.POST.get("basket"))
    editing = None
    if editing_id is not None:
        editing = SavedBasket.objects.filter(user=request.user, account=account, pk=editing_id).first()
        if editing is None:
            raise Http404("No such basket.")
    context = {"editing": editing, "name": request.POST.get("name", ""), "legs": legs}
    template = TEMPLATE
    if action == "add":
        if len(legs) < MAX_LEGS:
            legs.append(_empty_leg(_instruments(request)))
        return render(request, template, _context(request, account, **context))
    if action.startswith("remove:"):
        row = int_or_none(action.partition(":")[2])
        if row is not None and 0 <= row < len(legs) and len(legs) > 1:
            legs.pop(row)
        return render(request, template, _context(request, account, **context))
    try:
        basket = basket_save(
            user=request.user,
            account=account,
            name=context["name"],
            legs=_requests(legs),
            basket_id=editing.pk if editing else None,
        )
    except ApplicationError as error:
        context |= {"error": error, "leg_errors": _leg_errors(error)}
        status = 404 if error.code == "basket_not_found" else 422
        return render(request, TEMPLATE, _context(request, account, **context), status=status)
    saved = {"editing": basket, "name": basket.name, "legs": _saved_legs(basket), "saved": basket}
    return render(request, TEMPLATE, _context(request, account, **saved))


@login_required
@require_GET
def basket_preview(request: HttpRequest, account_id: int) -> HttpResponse:
    """The editor's margin and charges for its rows as they stand (GET with the form's fields)."""
    account = _account_for_panel(request, account_id, "trade")
    context: dict = {"preview": None, "preview_error": None}
    status = 200
    try:
        context["preview"] = order_preview(
            account=account, actor=request.user, requests=_requests(_raw_legs(request.GET))
        )
    except ApplicationError as error:
        if error.code == "basket_invalid":
            first = error.extra["legs"][0]
            error = BasketError(f"Leg {first['leg'] + 1}: {first['message']}", code=first["code"], extra=first["extra"])
        context["preview_error"], status = error, preview_status(error)
    return render(request, "terminal/_preview.html#preview", context, status=status)


@login_required
@require_POST
def basket_place(request: HttpRequest, account_id: int) -> HttpResponse:
    """Place the saved basket the form names (``basket``): every leg checked first (none placed if one
    is invalid), then each placed in order; the answer shows each leg's orders or its refusal. The
    form's one-time token makes a double submit place the basket once. A basket the user does not
    have answers 422 ``basket_not_found``."""
    account = _account_for_panel(request, account_id, "trade")
    try:
        basket = basket_get(user=request.user, account=account, basket_id=_basket_id(request))
    except BasketError as error:
        context = {"account": account, "basket": None, "place_error": error, "results": None}
        return render(request, f"{TEMPLATE}#result", context, status=422)
    token = (request.POST.get("form_token") or "")[:64]
    requests = basket_requests(basket)
    try:
        results = services.place_basket(
            actor=request.user,
            account=account,
            requests=requests,
            source=Source.WEB,
            idempotency_key=f"web-basket:{token}" if token else None,
            ip=client_ip(request),
        )
    except ApplicationError as error:
        context = {"basket": basket, "place_error": error, "place_leg_errors": _leg_errors(error), "results": None}
        status = error.status if 400 <= error.status < 500 else 422
        return render(request, f"{TEMPLATE}#result", context | {"account": account}, status=status)
    legs = list(basket.legs.select_related("instrument"))
    rows = [{"leg": leg, "result": result} for leg, result in zip(legs, results, strict=True)]
    placed = sum(1 for r in results if r.error is None)
    context = {"account": account, "basket": basket, "results": rows, "placed": placed}
    template = f"{TEMPLATE}#result" if request.htmx else TEMPLATE
    if not request.htmx:
        context = _context(request, account, **context)
    return render(request, template, context)


@login_required
@require_POST
def basket_remove(request: HttpRequest, account_id: int) -> HttpResponse:
    """Delete the saved basket the form names (``basket``) and show the page without it; 422
    ``basket_not_found`` for one the user does not have."""
    account = _account_for_panel(request, account_id, "trade")
    try:
        basket_delete(user=request.user, account=account, basket_id=_basket_id(request))
    except BasketError as error:
        return render(request, TEMPLATE, _context(request, account, error=error), status=422)
    return render(request, TEMPLATE, _context(request, account))


def _basket_id(request: HttpRequest) -> int:
    """The posted basket id; 0 (no basket has it) when it is missing or not a row's id."""
    basket_id = int_or_none(request.POST.get("basket"))
    return basket_id if basket_id is not None and 0 < basket_id < 2**63 else 0
