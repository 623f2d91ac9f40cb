"""Recompute the audit chains and compare them with the signed checkpoints.

Reads rows in (chain, seq) order through a server-side iterator, so memory stays flat however long
the trail is. ``verify_trail`` is what ``manage.py verify_audit`` runs: the chains, every stored
checkpoint's signature, and that the newest checkpoint is recent; it sets the verification metrics.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from audit import metrics
from audit.chain import GENESIS_HASH, UNKEYED, body_digest, event_hash, key_for, link_hash
from audit.checkpoints import Checkpoint, checkpoint_names, read_checkpoint, trusted_keys
from audit.errors import CheckpointError
from audit.models import AuditEvent

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
    "key_id",
)


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chain fails verification: chain, sequence, a reason code and an explanation."""

    chain: int
    seq: int
    # gap | hash_mismatch | reordered | broken_link | unknown_key | unkeyed | tail_missing | chain_missing
    # | checkpoint_mismatch
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"chain {self.chain} sequence {self.seq}: {self.reason}: {self.detail}"


@dataclass
class VerificationResult:
    """What a verification covered, the first break of each broken chain, and what is wrong with the
    checkpoints (a bad signature, none at all, the newest too old): ``ok`` when there is neither."""

    verified: int = 0
    heads: dict[int, int] = field(default_factory=dict)  # chain -> last sequence verified
    checkpoints: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.problems


def verify_trail(
    *,
    since: int | None = None,
    until: int | None = None,
    use_checkpoints: bool = True,
    progress: Callable[[int], object] | None = None,
    now: dt.datetime | None = None,
) -> VerificationResult:
    """Verify the chains against every stored checkpoint and check that the checkpoints are current.

    With ``use_checkpoints`` (the default) every checkpoint's signature is checked, the chains must
    still hold every head a checkpoint recorded, and a non-empty trail needs a checkpoint no older
    than ``AUDIT_CHECKPOINT_INTERVAL_SECONDS`` plus ``AUDIT_CHECKPOINT_GRACE_SECONDS``: without one
    (checkpoints stopped, or the newest were removed) a dropped tail could not be told from the end
    of the trail. Sets the verification metrics. Raises CheckpointError if the keys are misconfigured.
    """
    loaded, problems = [], []
    if use_checkpoints:
        keys = trusted_keys()
        for name in checkpoint_names():
            try:
                loaded.append(read_checkpoint(name, keys))
            except CheckpointError as exc:
                problems.append(exc.message)
    result = verify_chains(since=since, until=until, checkpoints=loaded, progress=progress)
    result.problems = problems
    if use_checkpoints:
        stale = checkpoint_staleness(loaded, now=now or timezone.now())
        if stale is not None:
            result.problems.append(stale)
    metrics.audit_last_verification_ok.set(1 if result.ok else 0)
    metrics.audit_last_verification_timestamp.set(time.time())
    return result


def checkpoint_staleness(checkpoints: list[Checkpoint], *, now: dt.datetime) -> str | None:
    """Return why the checkpoints do not cover the trail's recent past, or None if they do.

    The trail is empty only if it has no event at all; then no checkpoint is needed.
    """
    if not checkpoints:
        if not AuditEvent.objects.exists():
            return None
        return "there is no signed checkpoint of a non-empty audit trail (checkpoints never ran, or were removed)"
    newest = max(checkpoints, key=lambda c: c.created_at)
    allowed = settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS + settings.AUDIT_CHECKPOINT_GRACE_SECONDS
    age = (now - dt.datetime.fromisoformat(newest.created_at)).total_seconds()
    if age <= allowed:
        return None
    return (
        f"the newest signed checkpoint, {newest.name} of {newest.created_at}, is {age:.0f} s old; more than "
        f"the {allowed} s allowed (checkpoints stopped, or the newest were removed)"
    )


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
    progress: Callable[[int], object] | None = None,
) -> VerificationResult:
    """Verify every chain's events with ``since <= seq <= until``; return what was found.

    Each row's keyed hash is recomputed from its columns and its predecessor's hash, sequences must
    run without gaps, and every head recorded by a checkpoint (already signature-checked) inside the
    range must still be present with the same hash. A row linked without a key (written before keyed
    links) is accepted only up to the newest head a checkpoint recorded for its chain. Verification
    of a chain stops at its first break. ``progress`` is called with the number of rows read since
    its last call.
    """
    result = VerificationResult()
    checkpoint_list = list(checkpoints)
    result.checkpoints = len(checkpoint_list)
    pinned: dict[tuple[int, int], list[tuple[Checkpoint, str]]] = {}
    vouched: dict[int, int] = {}  # chain -> the highest sequence a checkpoint recorded
    for checkpoint in checkpoint_list:
        for chain_no, (seq, hash_) in checkpoint.heads.items():
            vouched[chain_no] = max(seq, vouched.get(chain_no, 0))
            if (since is None or seq >= since) and (until is None or seq <= until):
                pinned.setdefault((chain_no, seq), []).append((checkpoint, hash_))

    rows = AuditEvent.objects.order_by("chain", "seq")
    if since is not None:
        rows = rows.filter(seq__gte=since)
    if until is not None:
        rows = rows.filter(seq__lte=until)

    chain: int | None = None
    keyed = False  # whether the chain has had a keyed row yet
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
            chain, keyed = row["chain"], False
            expected = since if since and since > 1 else 1
            start = GENESIS_HASH if expected == 1 else _hash_at(chain, expected - 1)
            if start is None:
                _break(result, broken, chain, expected - 1, "gap", "the event before the verified range is missing")
                continue
            previous = start
        if chain in broken:
            continue
        # Unkeyed links predate keyed ones: after a keyed row of its chain, no checkpoint vouches for one.
        problem = _check_row(row, expected, previous, 0 if keyed else vouched.get(chain, 0))
        if problem is not None:
            _break(result, broken, chain, *problem)
            continue
        keyed = keyed or row["key_id"] != UNKEYED
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
        if chain_no not in result.heads and since is None:
            detail = f"the chain has no events but the checkpoint signed at {checkpoint.created_at} has {seq}"
            _break(result, broken, chain_no, 1, "chain_missing", detail)
            continue
        last = result.heads.get(chain_no, (since or 1) - 1)
        detail = f"the chain ends at sequence {last} but the checkpoint signed at {checkpoint.created_at} has {seq}"
        _break(result, broken, chain_no, last + 1, "tail_missing", detail)

    result.breaks.sort(key=lambda b: (b.chain, b.seq))
    for chain_no, seq in result.heads.items():
        if since is None and until is None and chain_no not in broken:
            metrics.audit_chain_length.labels(chain=str(chain_no)).set(seq)
    return result


def _check_row(row: dict, expected: int, previous: str, vouched: int) -> tuple[int, str, str] | None:
    """Return (seq, reason, detail) for the first problem with this row, or None if it is sound.

    ``vouched`` is the highest sequence of the row's chain that a signed checkpoint vouches for
    without a key.
    """
    if row["seq"] != expected:
        return expected, "gap", f"sequence {expected} is missing (the next event is {row['seq']})"
    try:
        key = key_for(row["key_id"])
    except KeyError:
        return row["seq"], "unknown_key", f"linked with key {row['key_id']!r}, which is not in AUDIT_HMAC_KEYS"
    if row["key_id"] == UNKEYED and row["seq"] > vouched:
        detail = "linked without a key, after every signed checkpoint of its chain (written in the database)"
        return row["seq"], "unkeyed", detail
    fields = {name: row[name] for name in _FIELDS if name not in {"hash", "key_id"}}
    if event_hash(key=key, **fields) != row["hash"]:
        moved_from = _written_as(fields, row["hash"], key)
        if moved_from is not None:
            return row["seq"], "reordered", f"this row was written as sequence {moved_from}"
        detail = "the stored hash does not match the row's contents under its key (altered, or written without the key)"
        return row["seq"], "hash_mismatch", detail
    if row["prev_hash"] != previous:
        detail = f"prev_hash does not match the hash of sequence {expected - 1} (rows replaced or the chain re-written)"
        return row["seq"], "broken_link", detail
    return None


def _written_as(fields: dict, stored_hash: str, key: bytes | None) -> int | None:
    """Return the sequence number this row's hash was computed for, if it is near its current one."""
    digest = body_digest(**{k: v for k, v in fields.items() if k not in {"chain", "seq", "prev_hash"}})
    for offset in range(1, REORDER_WINDOW + 1):
        for candidate in (fields["seq"] - offset, fields["seq"] + offset):
            if candidate > 0 and link_hash(fields["prev_hash"], fields["chain"], candidate, digest, key) == stored_hash:
                return candidate
    return None


def _hash_at(chain: int, seq: int) -> str | None:
    return AuditEvent.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()


def _break(result: VerificationResult, broken: set[int], chain: int, seq: int, reason: str, detail: str) -> None:
    broken.add(chain)
    result.breaks.append(ChainBreak(chain=chain, seq=seq, reason=reason, detail=detail))
