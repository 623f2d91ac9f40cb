"""Websocket rule: only a session that passed the second factor (and has not expired) is a user."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from accounts.middleware import session_expired


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


class OTPVerifiedMiddleware:
    """Inside AuthMiddlewareStack: replace ``scope["user"]`` by AnonymousUser unless OTP-verified.

    Consumers then only check ``scope["user"].is_authenticated``.
    """

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"] = await _verified_user(scope)
        return await self.inner(scope, receive, send)
