"""Recompute the audit chains and compare them with the signed checkpoints.

Reads rows in (chain, seq) order through a server-side iterator, so memory stays flat however long
the trail is. Used by ``manage.py verify_audit``; sets the verification metrics when it finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import Max

from compliance import metrics
from compliance.chain import GENESIS_HASH, event_hash, link_hash
from compliance.checkpoints import Checkpoint
from compliance.models import AuditEvent

CHUNK_SIZE = 5000
# How far a re-ordered row is looked for around its position, on the failure path only.
REORDER_WINDOW = 16

_FIELDS = (
    "chain",
    "seq",
    "created_at",
    "actor",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "payload",
    "ip",
    "request_id",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chain fails verification: chain, sequence, a reason code and an explanation."""

    chain: int
    seq: int
    reason: str  # gap | hash_mismatch | reordered | broken_link | tail_missing | checkpoint_mismatch
    detail: str

    def __str__(self) -> str:
        return f"chain {self.chain} sequence {self.seq}: {self.reason}: {self.detail}"


@dataclass
class VerificationResult:
    """What a verification covered and the first break of each broken chain (none when ``ok``)."""

    verified: int = 0
    heads: dict[int, int] = field(default_factory=dict)  # chain -> last sequence verified
    checkpoints: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def expected_total(*, since: int | None = None, until: int | None = None) -> int:
    """Return how many rows a verification of this range will read at most (for a progress bar)."""
    total = 0
    for last in AuditEvent.objects.values("chain").annotate(last=Max("seq")).values_list("last", flat=True):
        high = min(last, until) if until is not None else last
        total += max(0, high - (since or 1) + 1)
    return total


def verify_chains(
    *,
    since: int | None = None,
    until: int | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    progress: Callable[[int], None] | None = None,
) -> VerificationResult:
    """Verify every chain's events with ``since <= seq <= until``; return what was found.

    Each row's hash is recomputed from its columns and its predecessor's hash, sequences must run
    without gaps, and every head recorded by a checkpoint (already signature-checked) inside the
    range must still be present with the same hash. Verification of a chain stops at its first break.
    ``progress`` is called with the number of rows read since its last call.
    """
    result = VerificationResult()
    checkpoint_list = list(checkpoints)
    result.checkpoints = len(checkpoint_list)
    pinned: dict[tuple[int, int], list[tuple[Checkpoint, str]]] = {}
    for checkpoint in checkpoint_list:
        for chain, (seq, hash_) in checkpoint.heads.items():
            if (since is None or seq >= since) and (until is None or seq <= until):
                pinned.setdefault((chain, seq), []).append((checkpoint, hash_))

    rows = AuditEvent.objects.order_by("chain", "seq")
    if since is not None:
        rows = rows.filter(seq__gte=since)
    if until is not None:
        rows = rows.filter(seq__lte=until)

    chain: int | None = None
    broken: set[int] = set()
    expected, previous = 0, GENESIS_HASH
    unreported = 0
    for values in rows.values_list(*_FIELDS).iterator(chunk_size=CHUNK_SIZE):
        row = dict(zip(_FIELDS, values, strict=True))
        unreported += 1
        if progress is not None and unreported >= 1000:
            progress(unreported)
            unreported = 0
        if row["chain"] != chain:
            chain = row["chain"]
            expected = since if since and since > 1 else 1
            previous = GENESIS_HASH if expected == 1 else _hash_at(chain, expected - 1)
            if previous is None:
                _break(result, broken, chain, expected - 1, "gap", "the event before the verified range is missing")
        if chain in broken:
            continue
        problem = _check_row(row, expected, previous)
        if problem is not None:
            _break(result, broken, chain, *problem)
            continue
        for checkpoint, hash_ in pinned.get((chain, row["seq"]), ()):
            if row["hash"] != hash_:
                detail = (
                    f"hash differs from the checkpoint signed at {checkpoint.created_at} (the chain was re-written)"
                )
                _break(result, broken, chain, row["seq"], "checkpoint_mismatch", detail)
                break
        if chain in broken:
            continue
        result.verified += 1
        result.heads[chain] = row["seq"]
        expected, previous = row["seq"] + 1, row["hash"]
    if progress is not None and unreported:
        progress(unreported)

    for (chain_no, seq), entries in sorted(pinned.items()):
        if chain_no in broken or result.heads.get(chain_no, 0) >= seq:
            continue
        checkpoint = entries[0][0]
        last = result.heads.get(chain_no, (since or 1) - 1)
        detail = f"the chain ends at sequence {last} but the checkpoint signed at {checkpoint.created_at} has {seq}"
        _break(result, broken, chain_no, last + 1, "tail_missing", detail)

    result.breaks.sort(key=lambda b: (b.chain, b.seq))
    metrics.audit_last_verification_ok.set(1 if result.ok else 0)
    metrics.audit_last_verification_timestamp.set(time.time())
    for chain_no, seq in result.heads.items():
        if since is None and until is None and chain_no not in broken:
            metrics.audit_chain_length.labels(chain=str(chain_no)).set(seq)
    return result


def _check_row(row: dict, expected: int, previous: str) -> tuple[int, str, str] | None:
    """Return (seq, reason, detail) for the first problem with this row, or None if it is sound."""
    if row["seq"] != expected:
        return expected, "gap", f"sequence {expected} is missing (the next event is {row['seq']})"
    fields = {name: row[name] for name in _FIELDS if name not in {"hash"}}
    if event_hash(**fields) != row["hash"]:
        moved_from = _written_as(fields, row["hash"])
        if moved_from is not None:
            return row["seq"], "reordered", f"this row was written as sequence {moved_from}"
        return row["seq"], "hash_mismatch", "the stored hash does not match the row's contents (row altered)"
    if row["prev_hash"] != previous:
        detail = f"prev_hash does not match the hash of sequence {expected - 1} (rows replaced or the chain re-written)"
        return row["seq"], "broken_link", detail
    return None


def _written_as(fields: dict, stored_hash: str) -> int | None:
    """Return the sequence number this row's hash was computed for, if it is near its current one."""
    from compliance.chain import body_digest

    digest = body_digest(**{k: v for k, v in fields.items() if k not in {"chain", "seq", "prev_hash"}})
    for offset in range(1, REORDER_WINDOW + 1):
        for candidate in (fields["seq"] - offset, fields["seq"] + offset):
            if candidate > 0 and link_hash(fields["prev_hash"], fields["chain"], candidate, digest) == stored_hash:
                return candidate
    return None


def _hash_at(chain: int, seq: int) -> str | None:
    return AuditEvent.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()


def _break(result: VerificationResult, broken: set[int], chain: int, seq: int, reason: str, detail: str) -> None:
    broken.add(chain)
    result.breaks.append(ChainBreak(chain=chain, seq=seq, reason=reason, detail=detail))
