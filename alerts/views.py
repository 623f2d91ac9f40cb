"""The alerts pages: the dashboard's alerts panel (a partial), the alerts page, the form that creates
or changes an alert (also reached from a watchlist row), deleting one, and the organisation's
Telegram bot for its Owner and Admins."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.decorators import otp_required

from accounts.selectors import organisation_get_for_user
from alerts.errors import AlertInvalid, TelegramInvalid
from alerts.models import Alert, Average, Condition, Repeat
from alerts.selectors import alert_get_for_user, alert_list_for_user, firing_list_for_user, telegram_bot_for
from alerts.services import FIELDS_OF_FORM, alert_create, alert_delete, alert_update, telegram_bot_set
from brokers.selectors import account_list_for_user
from core.client_ip import client_ip
from core.errors import ApplicationError
from core.parse import int_or_none
from marketdata.models import Instrument, Product
from marketdata.quotes import get_quote

verified_required = otp_required(if_configured=False)
PANEL_ALERTS = 20


def panel_context(user) -> dict:
    return {
        "alerts": list(alert_list_for_user(user=user)[:PANEL_ALERTS]),
        "firings": firing_list_for_user(user=user, limit=10),
    }


@login_required
@require_GET
def panel(request: HttpRequest) -> HttpResponse:
    """The dashboard's alerts panel (``alerts/_panel.html#panel``)."""
    return render(request, "alerts/_panel.html#panel", panel_context(request.user))


@login_required
@require_GET
def alerts_page(request: HttpRequest) -> HttpResponse:
    context = panel_context(request.user)
    context["alerts"] = list(alert_list_for_user(user=request.user)[:500])
    context["firings"] = firing_list_for_user(user=request.user, limit=100)
    return render(request, "alerts/alerts.html", context)


def _form_context(request: HttpRequest, *, values: dict, errors: dict, alert: Alert | None, error=None) -> dict:
    instrument = Instrument.objects.filter(pk=int_or_none(values.get("instrument")) or 0).first()
    quote = get_quote(instrument.pk) if instrument is not None else None
    return {
        "alert": alert,
        "values": values,
        "errors": errors,
        "error": error,
        "instrument": instrument,
        "quote": quote,
        "conditions": Condition.choices,
        "averages": Average.choices,
        "repeats": Repeat.choices,
        "products": Product.choices,
        "accounts": list(account_list_for_user(user=request.user, access="trade")),
    }


def _posted(request: HttpRequest) -> dict:
    values: dict = {field: request.POST.get(field, "") for field in FIELDS_OF_FORM}
    for flag in ("notify_email", "notify_telegram"):
        values[flag] = request.POST.get(flag) == "on"
    return values


def _values_of(alert: Alert) -> dict:
    values = {field: getattr(alert, field, "") for field in FIELDS_OF_FORM}
    values.update(instrument=alert.instrument_id, account=alert.account_id or "")
    return {k: "" if v is None else v for k, v in values.items()}


@login_required
@require_http_methods(["GET", "POST"])
def alert_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (``?instrument=`` from a watchlist row, at a level near its price); POST: create."""
    if request.method == "POST":
        values = _posted(request)
        try:
            alert = alert_create(actor=request.user, values=values, ip=client_ip(request))
        except AlertInvalid as error:
            context = _form_context(
                request, values=values, errors=error.extra.get("fields", {}), alert=None, error=error
            )
            return render(request, "alerts/alert_form.html", context, status=422)
        messages.success(request, f"Alert {alert.pk} is set.")
        return redirect("home")
    instrument_id = int_or_none(request.GET.get("instrument"))
    quote = get_quote(instrument_id) if instrument_id else None
    values = {
        "instrument": instrument_id or "",
        "condition": Condition.LTP_ABOVE,
        "level": quote.ltp if quote else "",
        "order_product": Product.MIS,
    }
    return render(request, "alerts/alert_form.html", _form_context(request, values=values, errors={}, alert=None))


@login_required
@require_http_methods(["GET", "POST"])
def alert_edit(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = alert_get_for_user(user=request.user, alert_id=alert_id)
    except ApplicationError as exc:
        return render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    if request.method == "POST":
        values = _posted(request)
        try:
            alert_update(actor=request.user, alert=alert, values=values, ip=client_ip(request))
        except AlertInvalid as error:
            context = _form_context(
                request, values=values, errors=error.extra.get("fields", {}), alert=alert, error=error
            )
            return render(request, "alerts/alert_form.html", context, status=422)
        messages.success(request, f"Alert {alert.pk} is changed and armed.")
        return redirect("alerts:page")
    return render(
        request, "alerts/alert_form.html", _form_context(request, values=_values_of(alert), errors={}, alert=alert)
    )


@login_required
@require_POST
def alert_remove(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = alert_get_for_user(user=request.user, alert_id=alert_id)
    except ApplicationError as exc:
        return render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    alert_delete(actor=request.user, alert=alert, ip=client_ip(request))
    if request.htmx:
        return render(request, "alerts/_panel.html#panel", panel_context(request.user))
    messages.success(request, f"Alert {alert_id} is deleted.")
    return redirect("alerts:page")


@verified_required
@require_http_methods(["GET", "POST"])
def telegram(request: HttpRequest, slug: str) -> HttpResponse:
    """The organisation's Telegram bot: its name and chat; a new token replaces it once getMe accepts it."""
    try:
        organisation, membership = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    except ApplicationError as exc:
        return render(request, "accounts/error.html", {"error": exc}, status=exc.status)
    context = {"organisation": organisation, "membership": membership, "errors": {}, "chat_id": ""}
    status = 200
    if request.method == "POST":
        chat_id = request.POST.get("chat_id", "")
        try:
            telegram_bot_set(
                actor=request.user,
                organisation=organisation,
                token=request.POST.get("token", ""),
                chat_id=chat_id,
                ip=client_ip(request),
            )
        except TelegramInvalid as error:
            context.update(errors=error.extra.get("fields", {}), error=error, chat_id=chat_id)
            status = 422
        else:
            messages.success(request, "The Telegram bot is verified and saved.")
            return redirect("alerts:telegram", slug=organisation.slug)
    bot = telegram_bot_for(organisation_id=organisation.pk)
    context["bot"] = bot
    context["chat_id"] = context["chat_id"] or (bot.chat_id if bot else "")
    return render(request, "alerts/telegram.html", context, status=status)
