"""The trading panels of the terminal: order ticket, order book (modify, cancel), trades, positions
(square-off), funds, GTT orders (for a broker that has them; their views are in gtt.py), and the kill
switch. Every act goes through the same services as the API (orders.services, rms.services); these
views only parse the form and render the panel."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from brokers.adapters.registry import UnknownBroker, family
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.selectors import AccountAccess, account_get_for_user, account_list_for_user
from brokers.services.sessions import session_state
from core.client_ip import client_ip
from core.errors import ApplicationError
from core.parse import int_or_none
from infra.push import page_seq
from marketdata.depth import depth_context
from marketdata.errors import QuotesUnavailable
from marketdata.models import Instrument, InstrumentType
from marketdata.quotes import get_quote
from orders import services
from orders.models import Order, OrderType, Product, Side, Source, Validity, Variety
from orders.preview import order_preview
from orders.schemas import order_lots, order_price, whole_number
from orders.selectors import (
    funds_get,
    kill_switch_impact,
    order_book,
    order_row,
    position_day_pnl,
    position_list,
    trade_list,
)
from rms.models import KillScope
from rms.selectors import kill_switch_releasers, kill_switch_scope_words
from rms.services import MAX_ORDER_QUANTITY, active_kill_switch, kill_switch_release, may_engage, may_release

ORDER_BOOK_SIZE = 200
TRADE_BOOK_SIZE = 100
SESSION_ACCOUNT = "terminal.account_id"
PANEL_TEMPLATE = "terminal/_trading.html"


class TicketError(ApplicationError):
    code = "ticket_invalid"
    status = 422


def current_account(request: HttpRequest, accesses: list[AccountAccess] | None = None):
    """The broker account the page works on: ?account=, else the one chosen before, else the first
    the user may view. Returns None when the user can see no account. ``accesses``: the user's
    accounts when the caller has read them (``account_access_list_for_user``), which answers from
    them without a query."""
    wanted = request.GET.get("account") or request.POST.get("account") or request.session.get(SESSION_ACCOUNT)
    wanted_id = int_or_none(wanted) if isinstance(wanted, str) else wanted
    if wanted_id is not None:
        if accesses is not None:
            account = next((a.account for a in accesses if a.account.pk == wanted_id), None)
        else:
            try:
                account = account_get_for_user(user=request.user, account_id=wanted_id, access="view")
            except (BrokerAccountNotFound, BrokerAccountForbidden):
                account = None
        if account is not None:
            if request.session.get(SESSION_ACCOUNT) != account.pk:  # a write only when the choice changes
                request.session[SESSION_ACCOUNT] = account.pk
            return account
    if accesses is not None:
        return accesses[0].account if accesses else None
    return account_list_for_user(user=request.user, access="view").order_by("pk").first()


def may_trade_in(accesses: list[AccountAccess], account) -> bool:
    """Whether ``accesses`` (``account_access_list_for_user``) let the user trade on ``account``."""
    return account is not None and any(a.may_trade for a in accesses if a.account.pk == account.pk)


def can_trade(request: HttpRequest, account) -> bool:
    return (
        account is not None and account_list_for_user(user=request.user, access="trade").filter(pk=account.pk).exists()
    )


class _Once:
    """A context value computed on first use and kept: each panel renders only what it shows."""

    def __init__(self, compute) -> None:
        self.compute, self.value, self.done = compute, None, False

    def __call__(self):
        if not self.done:
            self.value, self.done = self.compute(), True
        return self.value


def trading_context(request: HttpRequest, account, accesses: list[AccountAccess] | None = None) -> dict:
    """Everything the trading panels show for ``account`` (or an empty state without one). Values are
    computed when a template first reads them, so a partial costs only its own queries. ``accesses``:
    the user's accounts with their trade flags, when the caller has read them (the account switcher
    and the trade buttons then cost no query)."""
    if account is None:
        return {"account": None, "accounts": [], "can_trade": False}
    positions = _Once(lambda: position_list(account=account))
    if accesses is not None:
        accounts: object = [access.account for access in accesses]
        trade: object = may_trade_in(accesses, account)
    else:
        accounts = _Once(lambda: list(account_list_for_user(user=request.user, access="view").order_by("pk")))
        trade = _Once(lambda: can_trade(request, account))
    return {
        "account": account,
        "accounts": accounts,
        "can_trade": trade,
        "orders": _Once(lambda: order_book(account=account, limit=ORDER_BOOK_SIZE)),
        "trades": _Once(lambda: list(trade_list(account=account).order_by("-executed_at")[:TRADE_BOOK_SIZE])),
        "positions": positions,
        "day_pnl": _Once(lambda: position_day_pnl(account=account, positions=positions())),
        "funds": _Once(lambda: funds_get(account=account)),
        "kill_switch": _Once(lambda: _active_switch(request, account)),
        "broker_session": _Once(lambda: _broker_session(account)),
        "kill_switch_choices": _Once(lambda: _switch_choices(request, account)),
        "gtt_offered": _Once(lambda: _gtt_offered(account)),
        # Read by the panel's opening tag, before its books: the page's socket catches up from here.
        "push_seq": _Once(lambda: page_seq(request.user.pk)),
    }


def _gtt_offered(account) -> bool:
    """Whether the account's broker family has GTT orders (``capabilities.gtt``): the GTT tab shows only then."""
    try:
        return family(account.broker).capabilities.gtt
    except UnknownBroker:
        return False


def _broker_session(account) -> dict | None:
    """The account's session at its broker, for a family with a daily login (None for one without):
    ``{"live", "expires_at", "ended_reason"}``."""
    try:
        adapter_class = family(account.broker)
    except UnknownBroker:
        return None
    if adapter_class.login is None:
        return None
    state = session_state(account)
    return {"live": state.live, "expires_at": state.expires_at, "ended_reason": state.ended_reason}


# The kill switches the terminal offers for an account, widest last: each needs may_engage.
KILL_SWITCH_SCOPES = (KillScope.ACCOUNT, KillScope.USER, KillScope.ORGANISATION, KillScope.GLOBAL)


def _switch_target(request: HttpRequest, account, scope: str) -> int | None:
    """The target of a switch chosen on ``account``'s page: the account, the user, its organisation."""
    return {
        KillScope.ACCOUNT: account.pk,
        KillScope.USER: request.user.pk,
        KillScope.ORGANISATION: account.organisation_id,
    }.get(scope)


def _active_switch(request: HttpRequest, account) -> dict | None:
    """The active switch covering the user's orders on ``account`` (the first engaged), in words:
    ``{"scope", "words", "releasers", "may_release"}``; None when trading is on."""
    key = active_kill_switch(organisation_id=account.organisation_id, account_id=account.pk, user_id=request.user.pk)
    if key is None:
        return None
    scope, _, target = key.partition(":")
    target_id = int(target) if target else None
    return {
        "scope": scope,
        "words": kill_switch_scope_words(scope=scope, target_id=target_id, viewer=request.user),
        "releasers": kill_switch_releasers(scope=scope, target_id=target_id),
        "may_release": may_release(actor=request.user, scope=scope, target_id=target_id),
    }


def _switch_choices(request: HttpRequest, account) -> list[dict]:
    """The switches the user may engage from ``account``'s page, each with what engaging it would do
    now: ``{"scope", "words", "releasers", "open_orders", "positions"}``."""
    choices = []
    for scope in KILL_SWITCH_SCOPES:
        target_id = _switch_target(request, account, scope)
        if not may_engage(actor=request.user, scope=scope, target_id=target_id):
            continue
        choices.append(
            {
                "scope": scope,
                "words": kill_switch_scope_words(scope=scope, target_id=target_id, viewer=request.user),
                "releasers": kill_switch_releasers(scope=scope, target_id=target_id),
                **kill_switch_impact(scope=scope, target_id=target_id),
            }
        )
    return choices


def _account_for_panel(request: HttpRequest, account_id: int, access: str):
    """The account for a panel or act: 404 if the user cannot see it, 403 if they see but may not act."""
    try:
        return account_get_for_user(user=request.user, account_id=account_id, access=access)
    except BrokerAccountNotFound:
        raise Http404("No such broker account.") from None
    except BrokerAccountForbidden as exc:
        raise PermissionDenied(exc.message) from None


def _panel(request: HttpRequest, account, name: str, *, status: int = 200, **extra) -> HttpResponse:
    """Render one panel; a refused act (``extra["error"]``) answers 422 or 409 with the panel showing it."""
    context = trading_context(request, account) | extra
    if status == 404:
        status = 422  # e.g. nothing to square off: the page exists, the request does not fit it
    return render(request, f"{PANEL_TEMPLATE}#{name}", context, status=status)


# --- panels (also the polling fallback while the socket is down) ---------------------------------------
@login_required
@require_GET
def panel(request: HttpRequest, account_id: int, name: str) -> HttpResponse:
    # The GTT panel has its own view (terminal/views/gtt.py), routed ahead of this one.
    if name not in {"orders", "trades", "positions", "funds", "kill-switch"}:
        raise Http404("No such panel.")
    # ?confirm=1 on the kill switch: the switches the user may engage, with what each would close now.
    confirming = name == "kill-switch" and request.GET.get("confirm") == "1"
    return _panel(request, _account_for_panel(request, account_id, "view"), name, confirming=confirming)


# --- order ticket ----------------------------------------------------------------------------------------
def _decimal(value: str | None, field: str) -> Decimal | None:
    """A price field of a form: empty is none; else read as the API reads it (orders.schemas), refused
    with a code naming the field (``price_not_a_number``, ``price_out_of_range``, ...)."""
    if value in (None, ""):
        return None
    return order_price(value, field)


def _ticket_context(request: HttpRequest, account, instrument: Instrument, data: dict) -> dict:
    try:
        quote = get_quote(instrument.pk)
    except QuotesUnavailable:  # Redis down: the ticket shows no price, and placing is refused (503)
        quote = None
    return {
        "account": account,
        "instrument": instrument,
        "quote": quote,
        "data": data,
        "sides": Side,
        "order_types": OrderType.choices,
        "products": _products_for(instrument),
        "validities": Validity.choices,
        "varieties": (varieties := _varieties_for(account)),
        "takes_iceberg": any(value == Variety.ICEBERG for value, _ in varieties),
        "form_token": data.get("form_token") or uuid.uuid4().hex,
        "depth": depth_context(instrument.pk, quote),
    }


def _varieties_for(account) -> list[tuple[str, str]]:
    """The varieties the account's broker takes, regular first: the ticket offers a choice only when
    there is one."""
    try:
        offered = family(account.broker).capabilities.varieties
    except UnknownBroker:
        return []
    return [(value, label) for value, label in Variety.choices if value in offered]


def _products_for(instrument: Instrument) -> list[tuple[str, str]]:
    if instrument.is_derivative:
        return [(Product.NRML, Product.NRML.label), (Product.MIS, Product.MIS.label)]
    return [(Product.CNC, Product.CNC.label), (Product.MIS, Product.MIS.label)]


@login_required
@require_GET
def ticket(request: HttpRequest, account_id: int) -> HttpResponse:
    """The order ticket for one instrument: GET ?instrument=&side= (the B and S keys open it). For an
    instrument that cannot be traded (an index) it answers 422 with the reason and no form."""
    account = _account_for_panel(request, account_id, "trade")
    instrument = Instrument.objects.filter(pk=int_or_none(request.GET.get("instrument")), is_active=True).first()
    if instrument is None:
        return HttpResponse("Choose an instrument from the watchlist first.", status=422, content_type="text/plain")
    side = request.GET.get("side", Side.BUY).upper()
    data = {"side": side if side in Side.values else Side.BUY, "order_type": OrderType.LIMIT, "lots": "1"}
    template = f"{PANEL_TEMPLATE}#ticket" if request.htmx else "terminal/ticket_page.html"
    context = _ticket_context(request, account, instrument, data)
    if not instrument.tradable:
        error = _not_tradable(instrument)
        return render(request, template, context | {"error": error}, status=error.status)
    return render(request, template, context)


def _not_tradable(instrument: Instrument) -> TicketError:
    """The refusal the ticket shows in place of its form; the code is the pre-trade check's own."""
    if instrument.instrument_type == InstrumentType.INDEX:
        reason = "is an index: it is watched and charted, and its futures and options are what trade"
    else:
        reason = "cannot be traded"
    return TicketError(f"{instrument.tradingsymbol} {reason}.", code="instrument_not_tradable")


def _order_request(data, instrument: Instrument) -> services.OrderRequest:
    lots = order_lots(data.get("lots") or "", instrument.lot_size)
    return services.OrderRequest(
        instrument_id=instrument.pk,
        side=data.get("side", ""),
        quantity=lots * max(instrument.lot_size, 1),
        order_type=data.get("order_type", ""),
        product=data.get("product", ""),
        validity=data.get("validity") or Validity.DAY,
        price=_decimal(data.get("price"), "price"),
        trigger_price=_decimal(data.get("trigger_price"), "trigger_price"),
        variety=data.get("variety") or Variety.REGULAR,
        iceberg_legs=_whole(data.get("iceberg_legs"), "iceberg_legs"),
        iceberg_quantity=_whole(data.get("iceberg_quantity"), "iceberg_quantity"),
    )


def _whole(raw: str | None, field: str) -> int | None:
    """A whole number from the ticket (an iceberg's legs and leg quantity), or None when left empty."""
    return whole_number(field, raw, maximum=MAX_ORDER_QUANTITY) if raw not in (None, "") else None


@login_required
@require_GET
def preview(request: HttpRequest, account_id: int) -> HttpResponse:
    """The ticket's margin and charges for its fields as they stand (GET with the form's fields): what
    placing would block, by the paper exchange's rules or the broker's margin API. A field that cannot
    be read answers 422 with the message in place of the numbers."""
    account = _account_for_panel(request, account_id, "trade")
    instrument = Instrument.objects.filter(pk=int_or_none(request.GET.get("instrument")), is_active=True).first()
    context: dict = {"preview": None, "preview_error": None}
    status = 200
    try:
        if instrument is None:
            raise TicketError("Choose an instrument from the watchlist first.", code="instrument_not_found")
        context["preview"] = order_preview(
            account=account, actor=request.user, requests=[_order_request(request.GET.dict(), instrument)]
        )
    except ApplicationError as error:
        if error.code == "basket_invalid":  # one leg: show its own refusal
            leg = error.extra["legs"][0]
            error = TicketError(leg["message"], code=leg["code"], extra=leg["extra"])
        context["preview_error"], status = error, preview_status(error)
    return render(request, "terminal/_preview.html#preview", context, status=status)


# Not bad input, so answered with 200 and the message in place of the numbers: a form not filled in
# yet (a limit order before its price is typed; the ticket first opens that way), and an account whose
# broker session has lapsed (the preview, asked on every change, says so; placing then refuses).
INCOMPLETE = frozenset({"price_required", "trigger_price_required", "broker_session_expired"})


def preview_status(error: ApplicationError) -> int:
    """The preview's answer to a refusal: 200 for a form not filled in yet or a lapsed broker session,
    else the refusal's 4xx (422 for a broker's 5xx: the preview is shown in place, nothing was placed)."""
    if error.code in INCOMPLETE:
        return 200
    return error.status if 400 <= error.status < 500 else 422


@login_required
@require_POST
def place(request: HttpRequest, account_id: int) -> HttpResponse:
    """Place the ticket's order. The form's one-time token is the idempotency key, so a double submit
    places one order. Errors come back in the ticket (422) naming the rule that refused it."""
    account = _account_for_panel(request, account_id, "trade")
    instrument = Instrument.objects.filter(pk=int_or_none(request.POST.get("instrument"))).first()
    if instrument is None:
        return HttpResponse("Choose an instrument from the watchlist first.", status=422, content_type="text/plain")
    data = request.POST.dict()
    try:
        order = services.place_order(
            actor=request.user,
            account=account,
            request=_order_request(data, instrument),
            source=Source.WEB,
            idempotency_key=f"web:{data.get('form_token', '')[:64]}" if data.get("form_token") else None,
            ip=client_ip(request),
        )
    except ApplicationError as error:
        context = _ticket_context(request, account, instrument, data) | {"error": error}
        template = f"{PANEL_TEMPLATE}#ticket" if request.htmx else "terminal/ticket_page.html"
        return render(request, template, context, status=error.status if 400 <= error.status < 500 else 422)
    if not request.htmx:
        return redirect("home")
    return _panel(request, account, "placed", order=order, order_row=order_row(order))


# --- order book actions ----------------------------------------------------------------------------------
def _order_for(request: HttpRequest, order_id: int) -> Order:
    order = Order.objects.select_related("account", "instrument").filter(pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    _account_for_panel(request, order.account_id, "trade")
    return order


def _act(request: HttpRequest, account, panel_name: str, act, **extra) -> HttpResponse:
    """Run ``act()``; answer a plain POST with a redirect home, an HTMX one with the panel (given
    ``extra``), showing the refusal (code and message, with its 4xx status) when the act raised an
    ApplicationError."""
    error = None
    try:
        act()
    except ApplicationError as exc:
        error = exc
    if not request.htmx:
        return redirect("home")
    return _panel(request, account, panel_name, status=error.status if error else 200, error=error, **extra)


@login_required
@require_POST
def cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order_for(request, order_id)
    return _act(
        request,
        order.account,
        "orders",
        lambda: services.cancel_order(actor=request.user, order=order, ip=client_ip(request)),
    )


@login_required
@require_POST
def modify(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order_for(request, order_id)

    def act() -> None:
        lots = order_lots(request.POST["lots"], order.instrument.lot_size) if request.POST.get("lots") else None
        services.modify_order(
            actor=request.user,
            order=order,
            quantity=lots * max(order.instrument.lot_size, 1) if lots else None,
            price=_decimal(request.POST.get("price"), "price"),
            trigger_price=_decimal(request.POST.get("trigger_price"), "trigger_price"),
            ip=client_ip(request),
        )

    return _act(request, order.account, "orders", act)


@login_required
@require_POST
def cancel_all(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account_for_panel(request, account_id, "trade")
    return _act(
        request,
        account,
        "orders",
        lambda: services.cancel_all(actor=request.user, account=account, ip=client_ip(request)),
    )


# --- positions -----------------------------------------------------------------------------------------
@login_required
@require_POST
def square_off(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account_for_panel(request, account_id, "trade")

    def act() -> None:
        instrument_id = int_or_none(request.POST.get("instrument"))
        if instrument_id is None:
            raise TicketError("Choose a position to square off.", code="position_required")
        services.square_off(
            actor=request.user,
            account=account,
            instrument_id=instrument_id,
            product=request.POST.get("product", ""),
            source=Source.WEB,
            ip=client_ip(request),
        )

    return _act(request, account, "positions", act)


# --- kill switch -----------------------------------------------------------------------------------------
@login_required
@require_POST
def kill_switch(request: HttpRequest, account_id: int) -> HttpResponse:
    """Engage or release a kill switch from ``account``'s page: POST ``scope`` (``account``, the
    default; ``user``, the user's own trading; ``organisation``, the account's; ``global``) and
    ``action=release`` to lift it. ``rms.services`` decides who may (anyone who trades the account
    halts it, Owners and Admins lift it). Engaging needs the confirmation box ticked; it cancels the
    scope's open orders and squares off its positions, and the panel says how many it did."""
    account = _account_for_panel(request, account_id, "trade")
    done: dict = {}

    def act() -> None:
        scope = request.POST.get("scope") or KillScope.ACCOUNT
        if scope not in KILL_SWITCH_SCOPES:
            raise TicketError(f"There is no kill switch for {scope[:40]!r}.", code="kill_switch_scope_invalid")
        target_id = _switch_target(request, account, scope)
        if request.POST.get("action") == "release":
            kill_switch_release(actor=request.user, scope=scope, target_id=target_id, ip=client_ip(request))
            return
        if request.POST.get("confirm") != "yes":
            raise TicketError("Tick the box to confirm the kill switch.", code="confirmation_required")
        done.update(
            services.kill_switch_engage(
                actor=request.user,
                scope=scope,
                target_id=target_id,
                reason=(request.POST.get("reason") or "manual, from the terminal")[:200],
                ip=client_ip(request),
            )
        )

    confirming = request.POST.get("action") != "release"  # a refused engage shows the choices again
    return _act(request, account, "kill-switch", act, kill_switch_done=done, confirming=confirming)
