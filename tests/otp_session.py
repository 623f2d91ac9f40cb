"""Sign a test client in with both factors, as pages, the admin and the API require (docs/rbac.md)."""

from __future__ import annotations

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def login_with_otp(client: Client, user) -> Client:
    """Force-log ``user`` in on ``client`` and mark the session OTP-verified; return the client.

    Gives the user a confirmed TOTP device if they have none.
    """
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="phone", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
