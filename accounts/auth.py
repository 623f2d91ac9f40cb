"""Authentication classes of the API and the scope check for write routes.

The API's default is ``api_auth``: a JWT bearer token, an API key (``X-API-Key``) or a browser
session that passed the second factor, tried in that order. A credential that is present but bad
fails the request with its own code instead of falling through to the next class.
Every authenticated request carries ``request.auth_scope``: ``trade`` for tokens and sessions,
the key's scope for API keys. Write routes call ``require_scope(request, "trade")`` or use
``@trade_scope_required``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, APIKeyHeader, HttpBearer
from ninja.utils import check_csrf

from accounts.credentials import access_token_authenticate, api_key_authenticate
from accounts.errors import AccountsError, InsufficientScope, MalformedAuthorization, OtpRequired
from accounts.failures import failure_gate, failure_record
from accounts.models import ApiKeyScope

SCOPE_TRADE = ApiKeyScope.TRADE.value
SCOPE_READ = ApiKeyScope.READ.value


class JWTAuth(HttpBearer):
    """``Authorization: Bearer <access token>``; any other Authorization header is refused."""

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        failure_gate(request)  # a source that failed too often is refused before any work
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            failure_record(
                request=request,
                action="auth.token_denied",
                reason="malformed_authorization",
                presented=header,
                payload={"reason": "malformed_authorization", "path": request.path},
            )
            raise MalformedAuthorization("The Authorization header must be 'Bearer <access token>'.")
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        try:
            user = access_token_authenticate(token=token)
        except AccountsError as exc:
            failure_record(
                request=request,
                action="auth.token_denied",
                reason=exc.code,
                presented=token,
                payload={"reason": exc.code, "path": request.path},
            )
            raise
        request.user = user
        request.auth_scope = SCOPE_TRADE  # type: ignore[attr-defined]
        return user


class ApiKeyAuth(APIKeyHeader):
    """``X-API-Key: atk_<id>_<secret>``, acting as the key's user within the key's scope."""

    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if key is None:
            return None
        failure_gate(request)
        api_key = api_key_authenticate(request=request, raw=key)
        request.user = api_key.user
        request.auth_scope = api_key.scope  # type: ignore[attr-defined]
        request.api_key = api_key  # type: ignore[attr-defined]
        return api_key.user


class VerifiedSessionAuth(APIKeyCookie):
    """The browser's session, only once the second factor was passed; CSRF-checked when present."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        key = request.COOKIES.get(self.param_name)
        # Without a session cookie there is nothing to forge, so no CSRF check (and a clear 401).
        if key and self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed.")
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if not user.is_verified():
            raise OtpRequired("Confirm your sign-in with a one-time code first.")
        request.auth_scope = SCOPE_TRADE  # type: ignore[attr-defined]
        return user


api_auth = [JWTAuth(), ApiKeyAuth(), VerifiedSessionAuth()]


def require_scope(request: HttpRequest, scope: str) -> None:
    """Raise InsufficientScope (403) unless the request's credential carries ``scope``.

    ``trade`` includes ``read``.
    """
    held = getattr(request, "auth_scope", None)
    if held == SCOPE_TRADE or (scope == SCOPE_READ and held == SCOPE_READ):
        return
    raise InsufficientScope(
        f"This route needs scope {scope!r}; the credential has {held!r}.", extra={"required": scope, "held": held}
    )


def trade_scope_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a ninja operation so that only credentials with scope ``trade`` reach it."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        require_scope(request, SCOPE_TRADE)
        return view(request, *args, **kwargs)

    return wrapper
