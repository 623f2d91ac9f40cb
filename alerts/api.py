"""REST API v1 for a user's price alerts and an organisation's Telegram bot (mounted at /api/v1/).

A caller reaches only their own alerts (another's is 404 ``alert_not_found``). Writes need the trade
scope; every value is checked by alerts.services.alert_clean (422 ``extra["fields"]`` names each
refused field; nothing is saved). The Telegram bot is for the organisation's Owner and Admins.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.http import HttpRequest
from ninja import Router, Status

from accounts.auth import SCOPE_TRADE, require_scope
from accounts.selectors import organisation_get_for_user
from alerts.errors import AlertNotFound
from alerts.schemas import AlertIn, AlertOut, FiringOut, TelegramIn, TelegramOut
from alerts.selectors import alert_get_for_user, alert_list_for_user, telegram_bot_for
from alerts.services import alert_create, alert_delete, alert_update, telegram_bot_remove, telegram_bot_set
from core.api_errors import errors
from core.client_ip import client_ip

router = Router(tags=["alerts"])


def _values(request: HttpRequest) -> dict:
    """The body's fields exactly as sent (numbers as Decimals, not floats); ninja has checked it is an object."""
    return json.loads(request.body, parse_float=Decimal)


@router.get("/alerts", response=list[AlertOut], summary="Your alerts")
def alerts(request: HttpRequest):
    return list(alert_list_for_user(user=request.user)[:500])


@router.post("/alerts", response={201: AlertOut, **errors(404)}, summary="Create an alert")
def create(request: HttpRequest, body: AlertIn):
    """422 ``alert_invalid`` (or the first field's own code) names every refused field in
    ``extra["fields"]``; nothing is saved then."""
    require_scope(request, SCOPE_TRADE)
    return Status(201, alert_create(actor=request.user, values=_values(request), ip=client_ip(request)))


@router.get("/alerts/{alert_id}", response={200: AlertOut, **errors(404)}, summary="One alert")
def detail(request: HttpRequest, alert_id: int):
    return alert_get_for_user(user=request.user, alert_id=alert_id)


@router.put("/alerts/{alert_id}", response={200: AlertOut, **errors(404)}, summary="Replace an alert and arm it")
def replace(request: HttpRequest, alert_id: int, body: AlertIn):
    require_scope(request, SCOPE_TRADE)
    alert = alert_get_for_user(user=request.user, alert_id=alert_id)
    return alert_update(actor=request.user, alert=alert, values=_values(request), ip=client_ip(request))


@router.delete("/alerts/{alert_id}", response={204: None, **errors(404)}, summary="Delete an alert")
def delete(request: HttpRequest, alert_id: int):
    require_scope(request, SCOPE_TRADE)
    alert = alert_get_for_user(user=request.user, alert_id=alert_id)
    alert_delete(actor=request.user, alert=alert, ip=client_ip(request))
    return Status(204, None)


@router.get("/alerts/{alert_id}/firings", response={200: list[FiringOut], **errors(404)}, summary="An alert's firings")
def firings(request: HttpRequest, alert_id: int):
    alert = alert_get_for_user(user=request.user, alert_id=alert_id)
    return list(alert.firings.order_by("-fired_at", "-pk")[:200])


@router.get("/orgs/{slug}/telegram", response={200: TelegramOut, **errors(403, 404)}, summary="The Telegram bot")
def telegram(request: HttpRequest, slug: str):
    organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    bot = telegram_bot_for(organisation_id=organisation.pk)
    if bot is None:
        raise AlertNotFound("This organisation has no Telegram bot.", code="telegram_not_set_up")
    return bot


@router.put("/orgs/{slug}/telegram", response={200: TelegramOut, **errors(403, 404)}, summary="Set the Telegram bot")
def set_telegram(request: HttpRequest, slug: str, body: TelegramIn):
    """The token is verified with the Bot API's getMe first: 422 ``token_refused`` (or
    ``token_malformed``, ``chat_id_malformed``) names the field; nothing is saved then."""
    require_scope(request, SCOPE_TRADE)
    organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    return telegram_bot_set(
        actor=request.user, organisation=organisation, token=body.token, chat_id=body.chat_id, ip=client_ip(request)
    )


@router.delete("/orgs/{slug}/telegram", response={204: None, **errors(403, 404)}, summary="Remove the Telegram bot")
def remove_telegram(request: HttpRequest, slug: str):
    require_scope(request, SCOPE_TRADE)
    organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    telegram_bot_remove(actor=request.user, organisation=organisation, ip=client_ip(request))
    return Status(204, None)
