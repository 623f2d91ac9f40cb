"""The hash that links audit events into a chain.

``event_hash`` is the single definition used both when appending (``services.audit_record``) and when
verifying (``verification``), so the two can never drift apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from terminal.lib.canonical_json import canonical_dumps, format_utc

GENESIS_HASH = "0" * 64
# Bumped if the hashed fields ever change; it is part of every hash so old rows stay verifiable.
HASH_VERSION = "v1"


def event_hash(
    *,
    prev_hash: str,
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
    """Return the SHA-256 hex digest over the previous hash and every column of the event.

    The fields are encoded as one canonical JSON array, which is unambiguous (no two different field
    tuples give the same bytes) and easy to reproduce outside Python. ``payload`` is the stored
    canonical JSON text, hashed as a string exactly as stored.
    """
    fields = [
        HASH_VERSION,
        prev_hash,
        seq,
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
    return hashlib.sha256(canonical_dumps(fields).encode()).hexdigest()
