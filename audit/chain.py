"""The keyed hashes that link audit events into a chain.

Every event's hash is computed in two steps:

    body_digest = SHA-256(canonical JSON of ["v1", created_at, actor, actor_name, action,
                                              target_type, target_id, payload, ip, request_id])
    hash        = HMAC-SHA-256(key[key_id], "<prev_hash>|<chain>|<seq>|<body_digest>")

The body is everything the caller supplies, encoded as one canonical JSON array (unambiguous: no
two different field tuples give the same bytes). The link step covers the previous hash in the same
chain, the chain number and the sequence number, under a secret key from ``AUDIT_HMAC_KEYS`` whose
id is stored in the row. The database never holds the key, so someone who can write to it (with the
application's credentials, or as a superuser) cannot compute a link that verifies: a forged, edited
or re-chained row shows up as a hash mismatch at its own sequence number.

Rows written before compliance migration 0005 have an empty ``key_id`` and a plain SHA-256 link
(``UNKEYED``); the verifier accepts them only where a signed checkpoint vouches for them.
These functions are the definition; the verifier uses them to recompute every row.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import re

from django.conf import settings

from core.canonical_json import format_utc

GENESIS_HASH = "0" * 64
# Bumped if the hashed fields ever change; it is part of every body so old rows stay verifiable.
HASH_VERSION = "v1"
# The key id of rows linked with plain SHA-256, before keyed links (compliance migration 0005).
UNKEYED = ""
KEY_BYTES = 32
KEY_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")  # fits AuditEvent.key_id


def parse_keys(raw: str) -> dict[str, bytes]:
    """Parse ``AUDIT_HMAC_KEYS`` (``id:base64,id:base64``) into {id: 32-byte key}.

    Raises ValueError naming the bad entry by its id or position, never echoing a key.
    """
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(filter(None, (part.strip() for part in raw.split(","))), start=1):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID_RE.match(key_id):
            raise ValueError(f"entry {position} is not id:base64key with an id of 1-16 letters, digits or _")
        if key_id in keys:
            raise ValueError(f"key id {key_id!r} appears twice")
        standard = encoded.replace("-", "+").replace("_", "/")  # URL-safe base64 is accepted too
        try:
            key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        except binascii.Error:
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {key_id!r} is {len(key)} bytes; an audit HMAC key is {KEY_BYTES}")
        keys[key_id] = key
    return keys


def new_key() -> str:
    """A fresh 32-byte key in the base64 form ``AUDIT_HMAC_KEYS`` takes."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def current_key() -> tuple[str, bytes]:
    """Return (id, key) of the key new events are linked with (``AUDIT_HMAC_KEY_ID``)."""
    return settings.AUDIT_HMAC_KEY_ID, settings.AUDIT_HMAC_KEYS[settings.AUDIT_HMAC_KEY_ID]


def key_for(key_id: str) -> bytes | None:
    """Return the key a row's ``key_id`` names: None for an unkeyed (pre-0005) row.

    Raises KeyError for an id that is not in ``AUDIT_HMAC_KEYS``.
    """
    if key_id == UNKEYED:
        return None
    return settings.AUDIT_HMAC_KEYS[key_id]


def body_digest(
    *,
    created_at: dt.datetime,
    actor: str,
    actor_name: str,
    action: str,
    target_type: str,
    target_id: str,
    payload: str,
    ip: str,
    request_id: str,
) -> str:
    """Return the SHA-256 hex digest of an event's own fields (``payload`` as stored, canonical JSON)."""
    fields = [
        HASH_VERSION,
        format_utc(created_at),
        actor,
        actor_name,
        action,
        target_type,
        target_id,
        payload,
        ip,
        request_id,
    ]
    # Every field is a string, whose canonical JSON is json.dumps' own (canonical_dumps would only
    # check each one first): this runs on every append and every verified row.
    return hashlib.sha256(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def link_hash(prev_hash: str, chain: int, seq: int, digest: str, key: bytes | None) -> str:
    """Return the event hash: HMAC-SHA-256 hex of ``"<prev_hash>|<chain>|<seq>|<body digest>"``.

    ``key`` None gives the plain SHA-256 link of rows written before keyed links.
    """
    message = f"{prev_hash}|{chain}|{seq}|{digest}".encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def event_hash(
    *,
    key: bytes | None,
    prev_hash: str,
    chain: int,
    seq: int,
    created_at: dt.datetime,
    actor: str,
    actor_name: str,
    action: str,
    target_type: str,
    target_id: str,
    payload: str,
    ip: str,
    request_id: str,
) -> str:
    """Return the hash an event with these columns must carry."""
    digest = body_digest(
        created_at=created_at,
        actor=actor,
        actor_name=actor_name,
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=payload,
        ip=ip,
        request_id=request_id,
    )
    return link_hash(prev_hash, chain, seq, digest, key)
