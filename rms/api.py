"""REST API v1 for an organisation's risk limits (mounted at /api/v1/ in config/api.py), the API
twin of the limits page (rms/views.py): the same reads and the same write, with the same access rule.

Every route reaches the organisation through accounts.selectors.organisation_get_for_user with
``manage=True``: an unknown organisation, or one the caller is not a member of, is 404
``organisation_not_found``; a Trader or Viewer of it is 403 ``not_organisation_manager``.
Writes go through rms.services.risk_limit_set, which validates and audits ``rms.limits_changed``.
Each PUT declares ``body: LimitsIn`` for its shape (a JSON object) and the OpenAPI docs; the values
handed to risk_limit_set are read by ``_values``.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.http import HttpRequest
from ninja import Router

from accounts.auth import SCOPE_TRADE, require_scope
from accounts.selectors import organisation_get_for_user
from core.client_ip import client_ip
from rms.errors import RiskLimitScopeNotFound
from rms.models import LimitScope
from rms.schemas import LimitScopeOut, LimitsIn, LimitsOut
from rms.selectors import risk_limit_scope_find, risk_limit_scopes
from rms.services import risk_limit_set

router = Router(tags=["risk limits"])

EVERYONE = {
    "scope": "everyone",
    "target_id": None,
    "label": "Everyone",
    "detail": "set by the platform, applies on top; read-only here",
}


def _values(request: HttpRequest) -> dict:
    """Return the body's fields exactly as sent. ninja has already checked it is a JSON object, but its
    parser reads numbers as floats, which would turn a max_order_value of 99999999999999.99 into
    ...98; risk_limit_clean takes Decimals and refuses anything with more places than the field keeps."""
    return json.loads(request.body, parse_float=Decimal)


def _set(request: HttpRequest, slug: str, scope: str, target_id: int | None) -> dict:
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    risk_limit_set(
        actor=request.user,
        organisation=organisation,
        scope=scope,
        target_id=target_id,
        values=_values(request),
        ip=client_ip(request),
    )
    entry = risk_limit_scope_find(risk_limit_scopes(organisation=organisation), scope=scope, target_id=target_id)
    if entry is None:  # the account or member was removed between the save and this read
        raise RiskLimitScopeNotFound(f"The {scope} {target_id} is no longer one of this organisation's.")
    return entry


@router.get("/orgs/{slug}/limits", response=LimitsOut, summary="The organisation's risk limits, by scope")
def limits(request: HttpRequest, slug: str):
    """What each scope sets: the organisation, each broker account, each member, and the platform's
    limits for everyone (read-only). For an order the strictest value among its scopes wins."""
    organisation, _ = organisation_get_for_user(user=request.user, slug=slug, manage=True)
    scopes = risk_limit_scopes(organisation=organisation)
    return scopes | {"everyone": EVERYONE | {"values": scopes["everyone"]}}


@router.put("/orgs/{slug}/limits/organisation", response=LimitScopeOut, summary="Set the organisation's risk limits")
def set_organisation(request: HttpRequest, slug: str, body: LimitsIn):
    """Fields not given keep their value; null clears one. 422 names each refused field in
    ``extra["fields"]`` and writes nothing. Returns the scope's limits after the change."""
    return _set(request, slug, LimitScope.ORGANISATION, None)


@router.put(
    "/orgs/{slug}/limits/accounts/{account_id}", response=LimitScopeOut, summary="Set a broker account's risk limits"
)
def set_account(request: HttpRequest, slug: str, account_id: int, body: LimitsIn):
    """As for the organisation; 404 ``risk_limit_scope_not_found`` when the account is not the
    organisation's."""
    return _set(request, slug, LimitScope.ACCOUNT, account_id)


@router.put("/orgs/{slug}/limits/members/{user_id}", response=LimitScopeOut, summary="Set a member's risk limits")
def set_member(request: HttpRequest, slug: str, user_id: int, body: LimitsIn):
    """As for the organisation; the limits cover that member's orders on this organisation's accounts
    only. 404 ``risk_limit_scope_not_found`` when the user is not a member."""
    return _set(request, slug, LimitScope.USER, user_id)
