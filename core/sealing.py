"""Secrets sealed at rest with AES-256-GCM, each bound to the row that holds it, under keys from a
key provider.

Used for broker secrets and sessions (brokers), TOTP seeds (accounts.models.SealedTOTPDevice) and
whatever else an app registers as a sealed field (infra.sealed_fields). A sealed text reads
``<version>:<key ref>:<nonce>:<ciphertext+tag>`` (nonce and ciphertext URL-safe base64); the version
names the provider that holds its key:

- ``v1``: the local keyring, ``settings.BROKER_ENCRYPTION_KEYS`` (key id -> 32 raw bytes; named for
  their first user, they seal every secret); the ref is the key id. Standalone and small deployments.
- ``v2``: envelope encryption under a key service (AWS KMS, infra.kms): the ref names a data key whose
  wrapped form and master key are stored by the provider; registered by infra when configured.

``settings.SEALING_BACKEND`` chooses the provider that seals new texts; every registered provider
opens its own. The associated data binds a text to one row and one field, so a sealed text copied
onto another row fails to open. A key marked retired (the check infra registers) opens and seals
nothing. Rotation re-seals every registered field under the current key (infra.key_rotation,
``manage.py rotate_keys``; docs/runbooks/key-rotation.md).

Random 96-bit nonces are safe for about 2**32 encryptions per key (NIST SP 800-38D); rotate well
before that.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from core.errors import ApplicationError

FORMAT_VERSION = "v1"  # the local keyring's texts
_VERSION = re.compile(r"v[0-9]{1,3}")
_REF = re.compile(r"[A-Za-z0-9_]{1,64}")
NONCE_BYTES = 12


class SecretError(ApplicationError):
    """A sealed text could not be opened or made: unknown, retired or unreachable key, tampered data,
    or a text bound to another row. Pages show the secret as needing to be entered again."""

    code = "secret_unreadable"
    status = 409


class KeyProvider(Protocol):
    """Where the keys of one format version come from."""

    version: str  # the prefix of the texts it seals ("v1")
    backend: str  # the SEALING_BACKEND value that makes it seal new texts ("local")

    def sealing_key(self) -> tuple[str, bytes]:
        """Return (ref, 32-byte key) for a new text; raise SecretError when no usable key is configured."""
        ...

    def opening_key(self, ref: str) -> bytes:
        """Return the 32-byte key ``ref`` names; raise SecretError (unknown, retired, unreachable)."""
        ...

    def master_of(self, ref: str) -> str:
        """Return the id of the key that protects ``ref`` (what is rotated and retired); raise SecretError."""
        ...

    def current_master(self) -> str:
        """Return the id of the key new texts are protected by."""
        ...

    def ref_length(self) -> int:
        """Return the length of the ref a new text carries (what a narrow column must hold)."""
        ...


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed text's parts."""

    version: str
    ref: str
    nonce: bytes
    body: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


# --- retirement -----------------------------------------------------------------------------------
_retired_check: Callable[[str], bool] = lambda key: False  # noqa: E731 - replaced by infra at start-up


def register_retired_check(check: Callable[[str], bool]) -> None:
    """Make ``check(key id)`` decide whether a master key is retired (infra's table of retired keys)."""
    global _retired_check
    _retired_check = check


def refuse_retired(key: str) -> None:
    """Raise SecretError(secret_key_retired) if ``key`` was retired."""
    if _retired_check(key):
        raise SecretError(f"Key {key!r} is retired: it opens and seals nothing.", code="secret_key_retired")


# --- the local keyring ----------------------------------------------------------------------------
class LocalKeyring:
    """The keys of ``settings.BROKER_ENCRYPTION_KEYS``; new texts use ``BROKER_ENCRYPTION_KEY_ID``."""

    version = FORMAT_VERSION
    backend = "local"

    def sealing_key(self) -> tuple[str, bytes]:
        key_id = self.current_master()
        return key_id, self.opening_key(key_id)

    def opening_key(self, ref: str) -> bytes:
        refuse_retired(ref)
        try:
            return settings.BROKER_ENCRYPTION_KEYS[ref]
        except KeyError:
            raise SecretError(f"Encryption key {ref!r} is not configured.", code="secret_key_unknown") from None

    def master_of(self, ref: str) -> str:
        return ref

    def current_master(self) -> str:
        return settings.BROKER_ENCRYPTION_KEY_ID

    def ref_length(self) -> int:
        return len(self.current_master())


_providers: dict[str, KeyProvider] = {FORMAT_VERSION: LocalKeyring()}


def register_provider(provider: KeyProvider) -> None:
    """Let ``provider`` open the texts of its version (and seal new ones when SEALING_BACKEND names it)."""
    _providers[provider.version] = provider


def unregister_provider(version: str) -> None:
    """Forget the provider of ``version`` (never the local keyring's)."""
    if version != FORMAT_VERSION:
        _providers.pop(version, None)


def registered_provider(version: str) -> KeyProvider | None:
    """Return the provider of texts of ``version``, or None."""
    return _providers.get(version)


def provider_for_version(version: str) -> KeyProvider:
    """Return the provider of texts of ``version``; raise SecretError when none is configured."""
    try:
        return _providers[version]
    except KeyError:
        raise SecretError(
            f"Secrets sealed as {version!r} need a key service that is not configured here.",
            code="secret_key_unknown",
        ) from None


def sealing_provider() -> KeyProvider:
    """Return the provider that seals new texts (``settings.SEALING_BACKEND``); raise SecretError if absent."""
    backend = getattr(settings, "SEALING_BACKEND", "local")
    for provider in _providers.values():
        if provider.backend == backend:
            return provider
    raise SecretError(f"The sealing backend {backend!r} is not registered.", code="secret_key_unknown")


def versions() -> tuple[str, ...]:
    """The format versions a stored value may carry (sealed values start with one and a colon)."""
    return tuple(sorted({FORMAT_VERSION, "v2", *_providers}))


def is_sealed(value: str) -> bool:
    """Whether ``value`` looks like a sealed text of any version (not whether it opens)."""
    return value.split(":", 1)[0] in versions() and value.count(":") == 3


def current_prefix() -> str:
    """The prefix of every text sealed as a new one would be (what rotation leaves alone).

    The local keyring's current key id, or a key service's version: a key service's data keys are
    re-wrapped under its current master in place, so any of its texts counts as current."""
    provider = sealing_provider()
    if provider.version == FORMAT_VERSION:
        return f"{FORMAT_VERSION}:{provider.current_master()}:"
    return f"{provider.version}:"


def sealed_length(plaintext_bytes: int) -> int:
    """The length of the text sealing ``plaintext_bytes`` bytes now (for columns of a fixed width)."""
    provider = sealing_provider()
    encoded = -(-(plaintext_bytes + 16) * 4 // 3)  # the GCM tag is 16 bytes; base64 without padding
    return len(provider.version) + 1 + provider.ref_length() + 1 + len(_b64(bytes(NONCE_BYTES))) + 1 + encoded


# --- sealing --------------------------------------------------------------------------------------
def parse(ciphertext: str) -> Sealed:
    """Return the parts of a sealed text; raise SecretError(secret_malformed) for anything else."""
    parts = ciphertext.split(":") if isinstance(ciphertext, str) else []
    # The ref is looked up (a data key's row): only the characters key ids and handles are made of.
    if len(parts) != 4 or not _VERSION.fullmatch(parts[0]) or not _REF.fullmatch(parts[1]):
        raise SecretError("The stored secret is not in a known format.", code="secret_malformed")
    try:
        nonce, body = _unb64(parts[2]), _unb64(parts[3])
    except ValueError:
        nonce = body = b""
    # Only the canonical encoding: altered spare bits of a last character would otherwise still open.
    if _b64(nonce) != parts[2] or _b64(body) != parts[3] or not body:
        raise SecretError("The stored secret is not in a known format.", code="secret_malformed")
    return Sealed(parts[0], parts[1], nonce, body)


def encrypt(plaintext: bytes, *, associated_data: bytes, key_id: str | None = None) -> str:
    """Return the sealed text of ``plaintext`` under the sealing provider's current key (or, for the
    local keyring only, ``key_id``); raise SecretError when that key cannot be used."""
    if key_id is not None:
        ref, key, version = key_id, _providers[FORMAT_VERSION].opening_key(key_id), FORMAT_VERSION
    else:
        provider = sealing_provider()
        ref, key = provider.sealing_key()
        version = provider.version
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext, associated_data)
    return f"{version}:{ref}:{_b64(nonce)}:{_b64(sealed)}"


def key_id_of(ciphertext: str) -> str:
    """Return the ref a text was sealed with (a local key id, a data key); raise SecretError if malformed."""
    return parse(ciphertext).ref


def master_of(ciphertext: str) -> str:
    """Return the id of the master key protecting a sealed text (what rotation moves off and retires)."""
    sealed = parse(ciphertext)
    return provider_for_version(sealed.version).master_of(sealed.ref)


def decrypt(ciphertext: str, *, associated_data: bytes) -> bytes:
    """Return the plaintext; raise SecretError if the key is unknown, retired or unreachable, or the
    data or binding was altered. Nothing is written."""
    sealed = parse(ciphertext)
    key = provider_for_version(sealed.version).opening_key(sealed.ref)
    if len(sealed.nonce) != NONCE_BYTES:
        raise SecretError("The stored secret failed its integrity check.", code="secret_tampered")
    try:
        return AESGCM(key).decrypt(sealed.nonce, sealed.body, associated_data)
    except (InvalidTag, ValueError):
        raise SecretError("The stored secret failed its integrity check.", code="secret_tampered") from None


def parse_keys(raw: str) -> dict[str, bytes]:
    """Parse ``id:base64key,id:base64key`` into {id: 32-byte key}; raise ValueError naming the bad entry."""
    keys: dict[str, bytes] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not (key_id.isidentifier() and key_id.isascii() and len(key_id) <= 64):
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
