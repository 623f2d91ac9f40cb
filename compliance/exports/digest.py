"""SHA-256 of an export's bytes, and its HTTP form (RFC 9530's ``Repr-Digest``).

A file cannot carry its own hash, so the hash travels beside it: in the response header, in the audit
event and in the export job's record."""

from __future__ import annotations

import base64
import hashlib
from typing import BinaryIO

READ_CHUNK = 1 << 20


def file_sha256(file: BinaryIO) -> tuple[str, int]:
    """Return the SHA-256 (hex) and the size in bytes of ``file`` read from its start; leaves it at 0."""
    file.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    return digest.hexdigest(), size


def repr_digest(sha256_hex: str) -> str:
    """The ``Repr-Digest`` field value for the SHA-256 ``sha256_hex``: ``sha-256=:<base64>:``."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
