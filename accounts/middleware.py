"""Session rules for the browser: two factors before anything else, and bounded session lifetime."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

# Reachable with a password alone: the second-factor pages themselves, signing out, probes, assets.
_OTP_EXEMPT_NAMES = ("accounts:otp-verify", "accounts:otp-enrol", "logout")
_OTP_EXEMPT_PREFIXES = ("/api/", "/metrics", "/static/")

SESSION_AUTH_AT = "auth_at"
SESSION_SEEN_AT = "seen_at"
_SEEN_WRITE_INTERVAL = 60  # seconds; the idle clock is coarse so that not every request writes the session


def session_expired(session, now: float | None = None) -> bool:
    """Return True when the session has been idle or alive longer than the configured limits."""
    now = time.time() if now is None else now
    auth_at = session.get(SESSION_AUTH_AT)
    seen_at = session.get(SESSION_SEEN_AT, auth_at)
    if auth_at is None:
        return False
    return now - auth_at > settings.SESSION_ABSOLUTE_SECONDS or now - seen_at > settings.SESSION_IDLE_SECONDS


class SessionExpiryMiddleware:
    """Sign the user out after SESSION_IDLE_SECONDS without a request or SESSION_ABSOLUTE_SECONDS in all."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            if SESSION_AUTH_AT not in request.session:
                request.session[SESSION_AUTH_AT] = now  # sessions from before this rule start their clock now
            if session_expired(request.session, now):
                logout(request)
            elif now - request.session.get(SESSION_SEEN_AT, 0) > _SEEN_WRITE_INTERVAL:
                request.session[SESSION_SEEN_AT] = now
        return self.get_response(request)


class RequireOTPMiddleware:
    """A signed-in user who has not passed the second factor reaches only the OTP pages.

    Pages redirect to enrolment (no confirmed device yet) or verification. API paths pass through:
    the API's authentication classes refuse such a session with 401 (accounts.auth).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        if request.path.startswith(_OTP_EXEMPT_PREFIXES):
            return self.get_response(request)
        if request.path in {reverse(name) for name in _OTP_EXEMPT_NAMES}:
            return self.get_response(request)
        if request.headers.get("HX-Request"):
            return JsonResponse(
                {"code": "otp_required", "message": "Confirm your sign-in with a one-time code.", "extra": {}},
                status=401,
            )
        from accounts.selectors import user_has_confirmed_totp

        target = "accounts:otp-verify" if user_has_confirmed_totp(user=user) else "accounts:otp-enrol"
        return redirect(f"{reverse(target)}?next={request.get_full_path()}")
