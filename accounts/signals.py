"""Audit of sign-in events raised by Django and django-axes."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from accounts import audit


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    if credentials.get("factor") == "otp":
        return  # a wrong one-time code is recorded as auth.otp_failed where it is checked
    audit.record(
        actor="anonymous",
        action="auth.login_failed",
        payload={
            "username": str(credentials.get("username", ""))[:150],
            "channel": "api" if request is not None and request.path.startswith("/api/") else "web",
        },
        request=request,
    )


@receiver(user_locked_out, dispatch_uid="accounts.audit_lockout")
def on_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    audit.record(
        actor="anonymous",
        action="auth.lockout",
        payload={"username": str(username or "")[:150], "ip": ip_address or ""},
        request=request,
    )
