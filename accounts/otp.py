"""Second-factor checks shared by the web sign-in and the API token route."""

from __future__ import annotations

import django_otp
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import audit

BACKUP_CODE_COUNT = 10


def otp_check(*, user, token: str, request: HttpRequest | None = None, channel: str = "web") -> Device | None:
    """Return the device that accepts ``token``, or None (the failure is audited and counted).

    Six digits are checked against the user's TOTP device only, anything else against the backup
    codes only: trying every device would bump the throttling of the ones not meant (a known
    django-otp pitfall that locks people out of their backup codes). A TOTP code is accepted once:
    the device remembers the last time step used. Each failure also counts towards the brute-force
    lockout of the username, so the second factor cannot be guessed after a leaked password.
    """
    token = "".join((token or "").split())
    device_class = TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    for device in device_class.objects.filter(user=user, confirmed=True):
        accepted = django_otp.verify_token(user, device.persistent_id, token)
        if accepted is not None:
            return accepted
    audit.record(
        actor=user,
        action="auth.otp_failed",
        target=user,
        payload={"channel": channel, "kind": "totp" if device_class is TOTPDevice else "backup"},
        request=request,
    )
    if request is not None:
        # Counted by django-axes like a wrong password, under the same username.
        user_login_failed.send(
            sender=__name__, credentials={"username": user.get_username(), "factor": "otp"}, request=request
        )
    return None


def backup_codes_issue(*, user) -> list[str]:
    """Replace the user's backup codes with BACKUP_CODE_COUNT new single-use ones and return them."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="backup", defaults={"confirmed": True})
    device.token_set.all().delete()
    # 16 base32 characters: 80 bits each; stored hashed is not offered by otp_static, so entropy carries it.
    codes = [StaticToken.random_token() + StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes
