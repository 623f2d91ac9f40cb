"""An archive's manifest: what a month's archive holds, signed with the audit signing key.

One JSON file per month, ``<YYYY-MM>/manifest.json``, written last (its presence means the archive is
complete)::

    {"format": "terminal-archive/1", "schema": 1, "month": "2026-01",
     "from": "...Z", "to": "...Z", "created_at": "...Z", "retention_years": 7,
     "files": {"org-3/orders.jsonl.gz": {"table": "orders_order", "organisation": 3, "rows": 120,
                                          "bytes": 4711, "sha256": "..."}, ...},
     "audit": {"1": {"first_seq": 10, "last_seq": 90, "prev_hash": "...", "last_hash": "..."}, ...},
     "heads": {"1": {"seq": 95, "hash": "..."}, ...},
     "key_id": "...", "signature": "<base64 Ed25519 over the canonical JSON of every other field>"}

``audit`` gives, per chain, the month's contiguous run of sequence numbers and the hashes at both
ends; ``heads`` the chain heads when the archive was written. The signature is made with
``AUDIT_SIGNING_KEY`` (the checkpoints' key) and checked against the same trusted keys, so a file and
its manifest line cannot be replaced together without the key.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature

from audit.checkpoints import signing_key, trusted_keys
from core.canonical_json import canonical_dumps
from core.ed25519 import key_id
from retention.errors import ArchiveInvalid

FORMAT = "terminal-archive/1"
SCHEMA = 1
NAME = "manifest.json"


def manifest_name(month: object) -> str:
    return f"{month}/{NAME}"


def sign(body: dict[str, Any]) -> bytes:
    """Return the manifest document for ``body`` with its key id and signature, as UTF-8 JSON."""
    key = signing_key()
    body = {**body, "key_id": key_id(key.public_key())}
    signature = base64.b64encode(key.sign(canonical_dumps(body).encode())).decode()
    return (json.dumps({**body, "signature": signature}, sort_keys=True, indent=1) + "\n").encode()


def parse(raw: bytes, *, month: object) -> dict[str, Any]:
    """Return the manifest's body after checking its format, shape and signature.

    Raises ArchiveInvalid naming the manifest for anything else.
    """
    name = manifest_name(month)

    def invalid(reason: str) -> ArchiveInvalid:
        return ArchiveInvalid(f"{name}: {reason}", extra={"file": name})

    try:
        document = json.loads(raw)
        signature = base64.b64decode(document.pop("signature"), validate=True)
        signer = str(document["key_id"])
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise invalid(f"not a readable manifest ({exc})") from exc
    if document.get("format") != FORMAT:
        raise invalid(f"unknown format {str(document.get('format'))[:40]!r}")
    key = trusted_keys().get(signer)
    if key is None:
        raise invalid(f"signed by unknown key {signer[:40]!r}")
    try:
        key.verify(signature, canonical_dumps(document).encode())
    except InvalidSignature:
        raise invalid("the signature does not match (the manifest was altered)") from None
    if document.get("month") != str(month):
        raise invalid(f"describes month {str(document.get('month'))[:20]!r}, not {month}")
    if not isinstance(document.get("files"), dict) or not isinstance(document.get("audit"), dict):
        raise invalid("lacks its files or audit sections")
    return document
