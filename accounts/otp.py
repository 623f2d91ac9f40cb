"""Second-factor checks shared by the web sign-in and the API token route."""

from __future__ import annotations

import hashlib
import re
from base64 import b32encode

import django_otp
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from accounts import audit
from accounts.models import SealedTOTPDevice

BACKUP_CODE_COUNT = 10
# What backup_code_digest stores: 16 upper-case base32 characters. The codes themselves are lower-case
# (StaticToken.random_token), so a plaintext code left in the table is told apart from a digest.
_DIGEST = re.compile(r"[A-Z2-7]{16}")


def backup_code_digest(*, device_id: int, code: str) -> str:
    """Return what is stored for backup ``code`` of StaticDevice ``device_id``: a one-way digest.

    The first 80 bits of SHA-256 over the device id and the code, base32: 16 characters, the width
    of StaticToken.token, so StaticDevice still looks the token up by equality and keeps its
    throttling and single-use deletion. A copy of the database (a backup, a read replica) then
    holds no usable code.

    An unkeyed, fast hash is enough because the codes are random with 80 bits each: finding one of
    a device's codes takes 2**80 / 10 SHA-256 evaluations on average (any of its ten digests will
    do), some 200,000 years of a current GPU at 2e10 a second. The device id is the salt: one guess
    tests one device's codes, not every user's at once, and no precomputed table applies. A slow
    hash (PBKDF2, Argon2) needs a random salt per row, which rules out StaticDevice's lookup by
    equality; a key (SECRET_KEY) would void every code handed out whenever it is rotated. Neither
    adds anything at this entropy.

    accounts/migrations/0005_backup_codes_hashed.py keeps a frozen copy of this function.
    """
    raw = hashlib.sha256(f"backup-code:{device_id}:{code}".encode()).digest()
    return b32encode(raw[:10]).decode()


def _backup_tokens_hash_plaintext(device: StaticDevice) -> None:
    """Store as digests any plaintext codes of ``device``.

    The migration hashed every code there was; this catches codes that a release from before it
    still issues while both run on one database (blue/green, or a rollback), so they verify too.
    """
    for pk, token in device.token_set.values_list("pk", "token"):
        if not _DIGEST.fullmatch(token):
            StaticToken.objects.filter(pk=pk, token=token).update(
                token=backup_code_digest(device_id=device.pk, code=token)
            )


def otp_check(*, user, token: str, request: HttpRequest | None = None, channel: str = "web") -> Device | None:
    """Return the device that accepts ``token``, or None (the failure is audited and counted).

    Six digits are checked against the user's TOTP device only, anything else against the backup
    codes only: trying every device would bump the throttling of the ones not meant (a known
    django-otp pitfall that locks people out of their backup codes). A TOTP code is accepted once:
    the device remembers the last time step used. A backup code is checked by its digest (see
    backup_code_digest), and StaticDevice deletes the matching one. Whitespace and case are ignored
    (the codes are lower-case base32, so folding case loses nothing). Each failure also counts towards the
    brute-force lockout of the username, so the second factor cannot be guessed after a leaked
    password.
    """
    token = "".join((token or "").split())
    device_class = SealedTOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    for device in device_class.objects.filter(user=user, confirmed=True):
        candidate = token
        if device_class is StaticDevice:
            _backup_tokens_hash_plaintext(device)
            candidate = backup_code_digest(device_id=device.pk, code=token.lower())
        accepted = django_otp.verify_token(user, device.persistent_id, candidate)
        if accepted is not None:
            return accepted
    audit.record(
        actor=user,
        action="auth.otp_failed",
        target=user,
        payload={"channel": channel, "kind": "totp" if device_class is SealedTOTPDevice else "backup"},
        request=request,
    )
    if request is not None:
        # Counted by django-axes like a wrong password, under the same username.
        user_login_failed.send(
            sender=__name__, credentials={"username": user.get_username(), "factor": "otp"}, request=request
        )
    return None


def backup_codes_issue(*, user) -> list[str]:
    """Replace the user's backup codes with BACKUP_CODE_COUNT new single-use ones and return them.

    The codes are returned to be shown once; only their digests are stored.
    """
    device, _ = StaticDevice.objects.get_or_create(user=user, name="backup", defaults={"confirmed": True})
    device.token_set.all().delete()
    # 16 lower-case base32 characters: 80 random bits each, which is what lets backup_code_digest be a plain hash.
    codes = [StaticToken.random_token() + StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=backup_code_digest(device_id=device.pk, code=code)) for code in codes]
    )
    return codes
