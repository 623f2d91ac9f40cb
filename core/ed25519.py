"""Ed25519 keys given as text: PEM (PKCS#8 / SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFormatError(ValueError):
    """The text is not an Ed25519 key in a form we read."""


def load_private_key(text: str) -> Ed25519PrivateKey:
    """Return the private key in ``text`` (PEM or base64 of the 32-byte seed); raise KeyFormatError."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(_b64(text))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error):
        raise KeyFormatError("not an unencrypted Ed25519 private key (PEM or base64 of 32 bytes)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(text: str) -> Ed25519PublicKey:
    """Return the public key in ``text`` (PEM or base64 of the 32 raw bytes); raise KeyFormatError."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(_b64(text))
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error):
        raise KeyFormatError("not an Ed25519 public key (PEM or base64 of 32 bytes)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(f"a {type(key).__name__}, not an Ed25519 public key")
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    """Return the public key as base64 of its 32 raw bytes (the form AUDIT_VERIFY_KEYS takes)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """Return a short stable name for a public key: the first 16 hex digits of SHA-256 of its bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("expected 32 bytes")
    return raw
