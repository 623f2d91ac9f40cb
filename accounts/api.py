"""API routes of the accounts domain: tokens, the caller, and the broker accounts they may reach."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from accounts import credentials
from accounts.schemas import (
    ApiKeyOut,
    BrokerAccountOut,
    MembershipOut,
    MeOut,
    RefreshIn,
    TokenObtainIn,
    TokenPairOut,
)
from accounts.selectors import api_key_list, organisation_list_for_user
from brokers.selectors import account_get_for_user, account_list_for_user
from core.api_errors import errors

router = Router(tags=["accounts"])


def _pair(pair: credentials.TokenPair) -> TokenPairOut:
    return TokenPairOut(access_token=pair.access, refresh_token=pair.refresh, expires_in=pair.expires_in)


@router.post("/auth/token", auth=None, response={200: TokenPairOut, **errors(401, 429)})
def token_obtain(request: HttpRequest, body: TokenObtainIn):
    """Sign in with password and one-time code: a short-lived access token and a refresh token.

    401 invalid_credentials / invalid_otp, 429 locked_out.
    """
    return _pair(
        credentials.token_obtain(request=request, username=body.username, password=body.password, otp=body.otp)
    )


@router.post("/auth/refresh", auth=None, response={200: TokenPairOut, **errors(401)})
def token_refresh(request: HttpRequest, body: RefreshIn):
    """Exchange a refresh token for a new pair; the old refresh token stops working.

    401 refresh_token_invalid / _expired / _revoked, or refresh_token_reused (the family is revoked).
    """
    return _pair(credentials.token_refresh(request=request, refresh=body.refresh_token))


@router.post("/auth/revoke", auth=None, response={204: None, **errors(401)})
def token_revoke(request: HttpRequest, body: RefreshIn):
    """Sign out: the refresh token, its successors and their access tokens stop working."""
    credentials.token_revoke(request=request, refresh=body.refresh_token)
    return HttpResponse(status=204)


@router.get("/me", response=MeOut)
def me(request: HttpRequest):
    memberships = [
        MembershipOut(organisation=m.organisation.slug, role=m.role)
        for m in organisation_list_for_user(user=request.user)
    ]
    return MeOut(
        id=request.user.pk, username=request.user.get_username(), scope=request.auth_scope, memberships=memberships
    )


@router.get("/api-keys", response=list[ApiKeyOut])
def api_keys(request: HttpRequest):
    """The caller's API keys (never their secrets)."""
    return list(api_key_list(user=request.user))


def _account_out(account) -> BrokerAccountOut:
    return BrokerAccountOut(
        id=account.pk,
        organisation=account.organisation.slug,
        label=account.label,
        broker=account.broker,
        client_code=account.client_code,
        is_active=account.is_active,
    )


@router.get("/broker-accounts", response=list[BrokerAccountOut])
def broker_accounts(request: HttpRequest):
    """The broker accounts the caller may view (roles plus grants)."""
    return [_account_out(a) for a in account_list_for_user(user=request.user, access="view").order_by("pk")]


@router.get("/broker-accounts/{account_id}", response=BrokerAccountOut)
def broker_account(request: HttpRequest, account_id: int):
    """One broker account; 404 broker_account_not_found when absent or out of reach."""
    return _account_out(account_get_for_user(user=request.user, account_id=account_id, access="view"))
