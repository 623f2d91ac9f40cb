"""Audit of sign-in events raised by Django and django-axes; ending the open websockets of a session
that signs out and of a user whose credentials change (infra.sockets)."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts import audit
from accounts.errors import RateLimiterUnavailable
from accounts.failures import failure_record
from infra import sockets


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if credentials.get("factor") == "otp":
        return  # a wrong one-time code is recorded as auth.otp_failed where it is checked
    username = str(credentials.get("username", ""))[:150]
    payload = {
        "username": username,
        "channel": "api" if request is not None and request.path.startswith("/api/") else "web",
    }
    if request is not None:
        # django-axes locks one username from one address; this counts one address across usernames
        # (password spraying): audited once a window, the repeats aggregated (accounts.failures).
        try:
            failure_record(
                request=request,
                action="auth.login_failed",
                reason="invalid_credentials",
                presented=username,
                payload=payload,
            )
            return
        except RateLimiterUnavailable:
            pass  # each is audited: Argon2 and the lockout bound their rate, and a sign-in form must not 500
    audit.record(actor="anonymous", action="auth.login_failed", payload=payload, request=request)


@receiver(user_locked_out, dispatch_uid="accounts.audit_lockout")
def on_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    audit.record(
        actor="anonymous",
        action="auth.lockout",
        payload={"username": str(username or "")[:150], "ip": ip_address or ""},
        request=request,
    )


@receiver(user_logged_out, dispatch_uid="accounts.sockets_signed_out")
def on_logged_out(sender, request, user=None, **kwargs) -> None:
    # Sent before the session is flushed, so its key still names the sockets it opened (also when
    # SessionExpiryMiddleware signs an expired session out).
    sockets.end_session(request.session.session_key if request is not None else None)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.sockets_user_saved")
def on_user_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    # Deactivated or a new password: each open socket re-checks its session and closes unless it still
    # signs the user in. Saves of other fields only (last_login at every sign-in) leave them be.
    if not created and (update_fields is None or {"password", "is_active"} & set(update_fields)):
        sockets.end_user(instance.pk, sockets.CREDENTIALS)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.sockets_user_deleted")
def on_user_deleted(sender, instance, **kwargs) -> None:
    sockets.end_user(instance.pk, sockets.CREDENTIALS)
