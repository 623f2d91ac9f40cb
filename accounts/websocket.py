"""Websocket rules: only a session that passed the second factor (and has not expired) is a user; a
socket reads its session and never writes it.

``SocketAuthMiddlewareStack`` is Channels' ``AuthMiddlewareStack`` with two differences: the session
middleware puts the cookie's session in the scope without wrapping ``send`` (Channels' wrapper reads
the lazy session on every message a socket sends, looking for changes to save that sockets never
make: about 3 us a message, 7 % of the tick fan-out's server time at 1,000 clients), and the OTP
rule above.

``socket_session_check`` is the check ``infra.sockets`` runs for an open socket (registered from
AccountsConfig.ready): on its clock, at its session's expiry, and when the user's credentials change.
"""

from __future__ import annotations

import time
from importlib import import_module

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.utils.crypto import constant_time_compare
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from accounts.auth_cache import cached_user
from accounts.middleware import SESSION_AUTH_AT, SESSION_SEEN_AT, session_expired
from infra.sockets import CHECK_SECONDS


@database_sync_to_async
def _verified_user(scope):
    user = scope.get("user")
    session = scope.get("session")
    if user is None or session is None or not user.is_authenticated:
        return AnonymousUser()
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    if device is None or device.user_id != user.pk or not device.confirmed or session_expired(session):
        return AnonymousUser()
    return user


def socket_session_check(session_key: str | None, user_id: int) -> float | None:
    """Return the seconds until the session ``session_key`` may expire (at most CHECK_SECONDS), or None
    when it no longer signs ``user_id`` in with both factors: signed out or flushed, expired, the user
    inactive or deleted, the password changed since sign-in, the second factor's device gone.

    Without a session (a scope built by hand, as some tests do) only the user is checked.
    """
    user = cached_user(user_id)  # active users only; dropped from the cache when the row changes
    if user is None:
        return None
    if session_key is None:
        return CHECK_SECONDS
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    if not session or str(session.get(SESSION_KEY)) != str(user_id):
        return None
    now = time.time()
    if session_expired(session, now):
        return None
    if not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return None
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(persistent_id) if persistent_id else None
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    auth_at = session.get(SESSION_AUTH_AT)
    if auth_at is None:
        return CHECK_SECONDS
    seen_at = session.get(SESSION_SEEN_AT, auth_at)
    ends_at = min(auth_at + settings.SESSION_ABSOLUTE_SECONDS, seen_at + settings.SESSION_IDLE_SECONDS)
    return min(CHECK_SECONDS, ends_at - now)


class OTPVerifiedMiddleware:
    """Inside the auth stack: replace ``scope["user"]`` by AnonymousUser unless OTP-verified.

    Consumers then only check ``scope["user"].is_authenticated``.
    """

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"] = await _verified_user(scope)
        return await self.inner(scope, receive, send)


class SocketSessionMiddleware:
    """Inside CookieMiddleware: ``scope["session"]`` is the session named by the session cookie, loaded on
    first use; ``send`` is passed through untouched (a socket never changes its session)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        store = import_module(settings.SESSION_ENGINE).SessionStore
        key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        return await self.inner({**scope, "session": store(key)}, receive, send)


def SocketAuthMiddlewareStack(inner):
    """Cookies, the session (read-only), the user, and the OTP rule, for websocket routes."""
    return CookieMiddleware(SocketSessionMiddleware(AuthMiddleware(OTPVerifiedMiddleware(inner))))
