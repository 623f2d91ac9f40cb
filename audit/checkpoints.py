"""Signed checkpoints of the audit chains, kept outside the database.

A checkpoint records the head (sequence and hash) of every chain, signed with the Ed25519 key in
``settings.AUDIT_SIGNING_KEY``, and is written to the ``audit_checkpoints`` storage (the local
filesystem by default, S3 when configured). Someone who can rewrite the database cannot rewrite
what was signed earlier, so a dropped tail or a dropped chain shows up against the last checkpoint
(``verify_audit``). One is signed every ``AUDIT_CHECKPOINT_INTERVAL_SECONDS`` even when the trail has
not moved, so that a missing recent checkpoint (checkpoints stopped, or the newest were removed) is
itself detected: the unsigned tail is at most that interval plus ``AUDIT_CHECKPOINT_GRACE_SECONDS``.

File format (UTF-8 JSON, one file per checkpoint, named so that names sort by time)::

    {"format": "terminal-audit-checkpoint/1", "created_at": "...Z", "events": 1234,
     "heads": {"1": {"seq": 160, "hash": "..."}, ...}, "key_id": "...", "signature": "<base64>"}

The signature covers the canonical JSON of every other field.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from audit.errors import CheckpointError
from core.canonical_json import canonical_dumps, format_utc
from core.ed25519 import KeyFormatError, key_id, load_private_key, load_public_key

FORMAT = "terminal-audit-checkpoint/1"
STORAGE_ALIAS = "audit_checkpoints"
PREFIX, SUFFIX = "checkpoint-", ".json"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature has been checked: when, the heads per chain, and its file name."""

    name: str
    created_at: str
    heads: dict[int, tuple[int, str]]  # chain -> (seq, hash)
    events: int
    key_id: str


def checkpoint_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def signing_key() -> Ed25519PrivateKey:
    """Return the configured signing key (validated at start-up by settings)."""
    return load_private_key(settings.AUDIT_SIGNING_KEY)


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """Return the public keys checkpoints may be signed with, by key id: the current and retired ones."""
    keys = [signing_key().public_key()]
    for text in settings.AUDIT_VERIFY_KEYS:
        try:
            keys.append(load_public_key(text))
        except KeyFormatError as exc:
            raise CheckpointError(f"AUDIT_VERIFY_KEYS holds a bad key: {exc}") from exc
    return {key_id(key): key for key in keys}


def write_checkpoint(*, heads: dict[int, tuple[int, str]], events: int, now: dt.datetime) -> Checkpoint:
    """Sign the given heads and save them as a new file; return the checkpoint as written."""
    key = signing_key()
    created_at, signed_by = format_utc(now), key_id(key.public_key())
    body = {
        "format": FORMAT,
        "created_at": created_at,
        "events": events,
        "heads": {str(chain): {"seq": seq, "hash": hash_} for chain, (seq, hash_) in sorted(heads.items())},
        "key_id": signed_by,
    }
    signature = base64.b64encode(key.sign(canonical_dumps(body).encode())).decode()
    document = json.dumps({**body, "signature": signature}, sort_keys=True, indent=1) + "\n"
    name = f"{PREFIX}{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}{SUFFIX}"
    saved = checkpoint_storage().save(name, ContentFile(document.encode()))
    return Checkpoint(name=saved, created_at=created_at, heads=dict(heads), events=events, key_id=signed_by)


def checkpoint_names() -> list[str]:
    """Return the names of every stored checkpoint, oldest first."""
    try:
        _, files = checkpoint_storage().listdir("")
    except FileNotFoundError:  # the filesystem storage's directory is made by the first save
        return []
    return sorted(name for name in files if name.startswith(PREFIX) and name.endswith(SUFFIX))


def read_checkpoint(name: str, keys: dict[str, Ed25519PublicKey] | None = None) -> Checkpoint:
    """Return the checkpoint stored as ``name`` after checking its signature.

    Raises CheckpointError if the file is malformed, signed by an unknown key, or its signature fails.
    """
    keys = trusted_keys() if keys is None else keys
    with checkpoint_storage().open(name, "rb") as handle:
        raw = handle.read()
    try:
        document = json.loads(raw)
        signature = base64.b64decode(document.pop("signature"), validate=True)
        if document.get("format") != FORMAT:
            raise ValueError(f"unknown format {document.get('format')!r}")
        heads = {int(chain): (int(head["seq"]), str(head["hash"])) for chain, head in document["heads"].items()}
        created_at, events, signer = str(document["created_at"]), int(document["events"]), str(document["key_id"])
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise CheckpointError(f"checkpoint {name} is malformed: {exc}", extra={"name": name}) from exc
    key = keys.get(signer)
    if key is None:
        raise CheckpointError(f"checkpoint {name} is signed by unknown key {signer}", extra={"name": name})
    try:
        key.verify(signature, canonical_dumps(document).encode())
    except InvalidSignature:
        raise CheckpointError(f"checkpoint {name} has an invalid signature", extra={"name": name}) from None
    return Checkpoint(name=name, created_at=created_at, heads=heads, events=events, key_id=signer)
