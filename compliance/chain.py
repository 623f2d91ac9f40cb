"""The hashes that link audit events into a chain.

Every event's hash is computed in two steps:

    body_digest = SHA-256(canonical JSON of ["v1", created_at, actor, actor_name, action,
                                              target_type, target_id, payload, ip, request_id])
    hash        = SHA-256("<prev_hash>|<chain>|<seq>|<body_digest>")

The body is everything the caller supplies, encoded as one canonical JSON array (unambiguous: no
two different field tuples give the same bytes). The link step covers the previous hash in the same
chain, the chain number and the sequence number. It is kept to ASCII hex and digits so that
PostgreSQL computes it in the stored function that takes the chain lock
(``compliance_audit_append``, migration 0004): the lock is then held for one call and the commit,
never across client round trips. These functions are the definition;
the verifier uses them to recompute every row, so an append path that disagreed would be caught.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from terminal.lib.canonical_json import format_utc

GENESIS_HASH = "0" * 64
# Bumped if the hashed fields ever change; it is part of every body so old rows stay verifiable.
HASH_VERSION = "v1"


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


def link_hash(prev_hash: str, chain: int, seq: int, digest: str) -> str:
    """Return the event hash: SHA-256 hex of ``"<prev_hash>|<chain>|<seq>|<body digest>"``."""
    return hashlib.sha256(f"{prev_hash}|{chain}|{seq}|{digest}".encode()).hexdigest()


def event_hash(
    *,
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
    return link_hash(prev_hash, chain, seq, digest)
