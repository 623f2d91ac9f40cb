"""Secrets sealed at rest with AES-256-GCM under versioned keys, each bound to the row that holds it.

Used for broker secrets (brokers.services.credentials) and TOTP seeds (accounts.models.SealedTOTPDevice).
A sealed text reads ``v1:<key id>:<nonce>:<ciphertext+tag>`` (nonce and ciphertext URL-safe base64).
The associated data binds it to one row and one field, so a sealed text copied onto another row
fails to open. Keys come from ``settings.BROKER_ENCRYPTION_KEYS`` (key id -> 32 raw bytes; named for
their first user, they seal every secret); new texts use ``settings.BROKER_ENCRYPTION_KEY_ID``;
``manage.py rotate_broker_keys`` re-seals every stored secret under the current key so a retired key
can be removed (docs/runbooks/key-rotation.md).

Random 96-bit nonces are safe for about 2**32 encryptions per key (NIST SP 800-38D); rotate well
before that.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from core.errors import ApplicationError

FORMAT_VERSION = "v1"
NONCE_BYTES = 12


class SecretError(ApplicationError):
    """A ciphertext could not be decrypted: unknown key, tampered data or the wrong row."""

    code = "secret_unreadable"
    status = 500


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _key(key_id: str) -> bytes:
    try:
        return settings.BROKER_ENCRYPTION_KEYS[key_id]
    except KeyError:
        raise SecretError(f"Encryption key {key_id!r} is not configured.", code="secret_key_unknown") from None


def encrypt(plaintext: bytes, *, associated_data: bytes, key_id: str | None = None) -> str:
    """Return the versioned ciphertext of ``plaintext`` under ``key_id`` (default: the current key)."""
    key_id = key_id or settings.BROKER_ENCRYPTION_KEY_ID
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_key(key_id)).encrypt(nonce, plaintext, associated_data)
    return f"{FORMAT_VERSION}:{key_id}:{_b64(nonce)}:{_b64(sealed)}"


def key_id_of(ciphertext: str) -> str:
    """Return the key id a ciphertext was sealed with; raise SecretError if it is malformed."""
    parts = ciphertext.split(":")
    if len(parts) != 4 or parts[0] != FORMAT_VERSION:
        raise SecretError("The stored secret is not in a known format.", code="secret_malformed")
    return parts[1]


def decrypt(ciphertext: str, *, associated_data: bytes) -> bytes:
    """Return the plaintext; raise SecretError if the key is unknown or the data or binding was altered."""
    key_id = key_id_of(ciphertext)
    _, _, nonce, sealed = ciphertext.split(":")
    try:
        return AESGCM(_key(key_id)).decrypt(_unb64(nonce), _unb64(sealed), associated_data)
    except (InvalidTag, ValueError):
        raise SecretError("The stored secret failed its integrity check.", code="secret_tampered") from None


def parse_keys(raw: str) -> dict[str, bytes]:
    """Parse ``id:base64key,id:base64key`` into {id: 32-byte key}; raise ValueError naming the bad entry."""
    keys: dict[str, bytes] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id.isidentifier():
            raise ValueError(f"entry {key_id or entry!r} is not id:base64key")
        try:
            key = _unb64(encoded)
        except ValueError:
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"key {key_id!r} is {len(key)} bytes, AES-256 needs 32")
        keys[key_id] = key
    return keys


def new_key() -> str:
    """A fresh 32-byte key in the base64 form BROKER_ENCRYPTION_KEYS takes."""
    return _b64(os.urandom(32))


# Apps above the one that runs the rotation (``manage.py rotate_broker_keys``, in brokers) register
# how to re-seal their own sealed texts: (what they are, rotate(batch_size=) yielding rows done per
# batch, usage() counting rows per key id).
Resealer = tuple[str, Callable[..., Iterator[int]], Callable[[], dict[str, int]]]
_resealers: dict[str, Resealer] = {}


def register_resealer(
    name: str, *, rotate: Callable[..., Iterator[int]], usage: Callable[[], dict[str, int]], what: str
) -> None:
    """Have key rotation re-seal another kind of secret (``what``, e.g. "Telegram bot token(s)")."""
    _resealers[name] = (what, rotate, usage)


def resealers() -> list[Resealer]:
    return list(_resealers.values())
