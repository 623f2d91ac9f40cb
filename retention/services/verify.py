"""Verify a month's archive: the manifest's signature, every file's size, SHA-256 and row count, that
every line is a record, and the audit events re-linked with their keyed hashes and compared with the
audit chain in the database (docs/retention.md, "Verifying")."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from audit.chain import event_hash, key_for
from audit.models import AuditEvent
from retention import manifest
from retention.errors import ArchiveInvalid, ArchiveMissing
from retention.months import Month
from retention.services.archive import AUDIT_FILE
from retention.storage import archive_storage


@dataclass
class Problem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass
class ArchiveCheck:
    month: Month
    files: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _FileBroken(Exception):
    pass


def load_manifest(month: Month) -> dict[str, Any]:
    """Return ``month``'s manifest, signature checked; raise ArchiveMissing or ArchiveInvalid."""
    storage, name = archive_storage(), manifest.manifest_name(month)
    if not storage.exists(name):
        raise ArchiveMissing(f"{month} has no archive ({name} is not stored).", extra={"file": name})
    with storage.open(name, "rb") as handle:
        return manifest.parse(handle.read(), month=month)


def read_records(month: Month, relative: str, entry: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield the records of one archived file after checking its size and SHA-256 against ``entry``;
    raise ArchiveInvalid naming the file for a missing, truncated, altered or unreadable one."""
    name = f"{month}/{relative}"
    storage = archive_storage()

    def invalid(reason: str) -> ArchiveInvalid:
        return ArchiveInvalid(f"{name}: {reason}", extra={"file": name})

    if not storage.exists(name):
        raise invalid("missing from the archive")
    digest, size = hashlib.sha256(), 0
    with storage.open(name, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    if size < entry["bytes"]:
        raise invalid(f"truncated: {size} bytes stored, the manifest says {entry['bytes']}")
    if size != entry["bytes"] or digest.hexdigest() != entry["sha256"]:
        raise invalid(f"SHA-256 {digest.hexdigest()} differs from the manifest's {entry['sha256']} (corrupted)")
    count = 0
    try:
        with storage.open(name, "rb") as handle, gzip.GzipFile(fileobj=handle, mode="rb") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise invalid(f"line {number} is not JSON ({exc})") from exc
                if not isinstance(record, dict):
                    raise invalid(f"line {number} is not a record")
                count += 1
                yield record
    except (OSError, EOFError, zlib.error) as exc:
        raise invalid(f"not a complete gzip file ({exc})") from exc
    if count != entry["rows"]:
        raise invalid(f"holds {count} rows, the manifest says {entry['rows']}")


def _hash_at(chain: int, seq: int) -> str | None:
    return AuditEvent.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()


def _check_audit(month: Month, body: dict[str, Any], check: ArchiveCheck) -> None:
    """Re-link the archived audit events and compare both ends of each chain's run with the database."""
    name = f"{month}/{AUDIT_FILE}"
    runs = {int(chain): run for chain, run in body["audit"].items()}
    seen: dict[int, tuple[int, str]] = {}  # chain -> (last seq, last hash) read so far
    for record in read_records(month, AUDIT_FILE, body["files"][AUDIT_FILE]):
        chain, seq = int(record["chain"]), int(record["seq"])
        run = runs.get(chain)
        if run is None:
            raise ArchiveInvalid(f"{name}: chain {chain} is not in the manifest", extra={"file": name})
        expected_seq, previous = seen.get(chain, (run["first_seq"] - 1, run["prev_hash"]))
        if seq != expected_seq + 1 or record["prev_hash"] != previous:
            raise ArchiveInvalid(
                f"{name}: chain {chain} sequence {seq} does not follow sequence {expected_seq}", extra={"file": name}
            )
        try:
            key = key_for(record["key_id"])
        except KeyError:
            raise ArchiveInvalid(
                f"{name}: chain {chain} sequence {seq} names key {record['key_id']!r}, not in AUDIT_HMAC_KEYS",
                extra={"file": name},
            ) from None
        fields = AuditEvent._meta.get_field("created_at")
        computed = event_hash(
            key=key,
            prev_hash=record["prev_hash"],
            chain=chain,
            seq=seq,
            created_at=fields.to_python(record["created_at"]),
            **{f: record[f] for f in ("actor", "actor_name", "action", "target_type", "target_id", "payload")},
            ip=record["ip"],
            request_id=record["request_id"],
        )
        if computed != record["hash"]:
            raise ArchiveInvalid(
                f"{name}: chain {chain} sequence {seq}: its keyed hash does not match its contents (altered)",
                extra={"file": name},
            )
        seen[chain] = (seq, record["hash"])
    for chain, run in runs.items():
        if seen.get(chain) != (run["last_seq"], run["last_hash"]):
            raise ArchiveInvalid(f"{name}: chain {chain} does not end where the manifest says", extra={"file": name})
        # Both ends of the run must still be the database's chain: the archive is that chain's month.
        stored = _hash_at(chain, run["last_seq"])
        if stored is not None and stored != run["last_hash"]:
            check.problems.append(
                Problem(name, f"chain {chain} sequence {run['last_seq']} differs from the audit trail in the database")
            )
    for chain_text, head in body.get("heads", {}).items():
        stored = (
            AuditEvent.objects.filter(chain=int(chain_text), seq=head["seq"]).values_list("hash", flat=True).first()
        )
        if stored is not None and stored != head["hash"]:
            check.problems.append(
                Problem(
                    manifest.manifest_name(month),
                    f"the chain {chain_text} head at archive time (sequence {head['seq']}) differs from the "
                    "audit trail in the database (the chain was re-written)",
                )
            )


def verify_archive(month: Month, *, progress: Callable[[int], object] | None = None) -> ArchiveCheck:
    """Verify ``month``'s archive; return what was checked and every problem, each naming its file.

    Raises ArchiveMissing when the month has no manifest.
    """
    check = ArchiveCheck(month=month)
    try:
        body = load_manifest(month)
    except ArchiveInvalid as exc:
        check.problems.append(Problem(exc.extra["file"], exc.message.split(": ", 1)[-1]))
        return check
    for relative, entry in sorted(body["files"].items()):
        check.files += 1
        try:
            if relative == AUDIT_FILE:
                _check_audit(month, body, check)
            else:
                for _ in read_records(month, relative, entry):
                    pass
        except ArchiveInvalid as exc:
            check.problems.append(Problem(exc.extra["file"], exc.message.split(": ", 1)[-1]))
            continue
        check.rows += int(entry["rows"])
        if progress is not None:
            progress(1)
    return check
