"""What the families' sign-ins share: the TOTP a broker asks for (RFC 6238: 30-second steps, six
digits, SHA-1) from the base32 secret the broker gave the account's owner, and SHA-256 hex digests
(NorenOMS, Fyers and Kite send hashed passwords, app keys and checksums)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time

from django_otp.oath import hotp  # type: ignore[import-untyped]


def totp_now(secret_b32: str, *, at: float | None = None) -> str:
    """The six-digit TOTP of a base32 secret (spaces and case ignored) at ``at`` (now by default).
    Raises ValueError for a secret that is not base32."""
    cleaned = secret_b32.replace(" ", "").upper()
    if not cleaned:
        raise ValueError("the account has no TOTP secret stored")
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("the stored TOTP secret is not base32") from None
    now = time.time() if at is None else at
    return f"{hotp(key, int(now) // 30, digits=6):06d}"  # TOTP is the HOTP of the 30-second step


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
