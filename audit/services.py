"""Writes of the compliance domain: appending audit events (and, in checkpoints.py, signing the head)."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
import weakref
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Max
from django.utils import timezone

from audit import checkpoints, metrics
from audit.chain import GENESIS_HASH, body_digest, current_key, link_hash
from audit.checkpoints import Checkpoint
from audit.errors import AuditInputError, CheckpointError
from audit.models import AuditEvent
from core.canonical_json import CanonicalJSONError, canonical_dumps
from core.request_id import get_request_id

ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
ACTOR_RE = re.compile(r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.@-]+)*$")

Actor = AbstractBaseUser | str | None
Target = models.Model | tuple[str, Any] | None

# The head each connection appended last, (chain, seq, hash): a hint for its next append only.
_last_heads: weakref.WeakKeyDictionary[BaseDatabaseWrapper, tuple[int, int, str]] = weakref.WeakKeyDictionary()


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: Target = None,
    payload: Mapping[str, Any],
    ip: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Append one event to the audit chain and return it.

    ``actor`` is a user (``request.user``; an anonymous user is recorded as ``anonymous``), None for
    the system, or a label such as ``"system:rms"``. ``action`` is a dotted name (``order.placed``).
    ``target`` is a saved model instance or a ``(type, id)`` pair. ``payload`` is a mapping with a
    canonical JSON form (see core.canonical_json). ``request_id`` defaults to the id of the
    request being served.

    Called inside a transaction, the event commits or rolls back with it, and the chain stays locked
    until that transaction ends (so write the event last and keep such transactions short). Outside
    one, the event commits at once.

    Raises AuditInputError, before anything is written, for a bad actor, action, target, payload, ip or
    request id.
    """
    actor_label, actor_name = _actor(actor)
    if not isinstance(action, str) or len(action) > 100 or not ACTION_RE.match(action):
        raise AuditInputError(
            f"action {action!r} is not a dotted lower-case name such as 'order.placed'", extra={"field": "action"}
        )
    target_type, target_id = _target(target)
    if not isinstance(payload, Mapping):
        raise AuditInputError(f"payload must be a mapping, not a {type(payload).__name__}", extra={"field": "payload"})
    try:
        payload_text = canonical_dumps(dict(payload))
    except CanonicalJSONError as exc:
        raise AuditInputError(
            f"payload is not JSON-serialisable: {exc}", extra={"field": "payload", "path": exc.path}
        ) from exc
    ip_text = _ip(ip)
    if request_id is None:
        request_id = get_request_id() or ""
    if not isinstance(request_id, str) or len(request_id) > 128:
        raise AuditInputError("request_id must be a string of at most 128 characters", extra={"field": "request_id"})

    event = AuditEvent(
        created_at=timezone.now(),
        actor=actor_label,
        actor_name=actor_name,
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=payload_text,
        ip=ip_text,
        request_id=request_id,
    )
    digest = body_digest(
        created_at=event.created_at,
        actor=event.actor,
        actor_name=event.actor_name,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        payload=event.payload,
        ip=event.ip,
        request_id=event.request_id,
    )
    alias = router.db_for_write(AuditEvent)
    if connections[alias].vendor == "postgresql":
        _append_postgresql(event, digest, alias)
    else:
        _append_portable(event, digest, alias)
    event._state.adding, event._state.db = False, alias
    transaction.on_commit(lambda: _count_committed(event), using=alias)
    return event


def _append_postgresql(event: AuditEvent, digest: str, alias: str) -> None:
    """Append through the stored functions of migration 0005; fill in the rest of ``event``.

    The application may not INSERT into the audit table; ``compliance_audit_insert`` (SECURITY
    DEFINER) takes the chain's lock, checks that the given sequence and previous hash follow the
    chain's newest event, and inserts, or inserts nothing and returns NULL. The link is keyed with
    ``AUDIT_HMAC_KEYS``, which the database never sees, so it is computed here, from a head read under
    the lock that the insert then re-checks.

    The head this connection appended last is tried first: with each writer on its own chain (what
    ``compliance_audit_head`` arranges) the guess holds and an append is one round trip. When another
    transaction holds that chain or has moved it on, ``compliance_audit_head`` locks a chain and
    returns its newest event, and the insert under that lock cannot miss. The lock is held until the
    surrounding transaction (or, in autocommit, the atomic block here) commits.
    """
    connection = connections[alias]
    key_id, key = current_key()
    guess = _last_heads.get(connection)
    with connection.cursor() as cursor:
        if guess is not None:
            event.chain, event.seq, event.prev_hash = guess[0], guess[1] + 1, guess[2]
            event.id = _insert_postgresql(cursor, event, digest, key_id, key)
        if event.id is None:
            # The head and the insert must share the chain's lock: in autocommit, this opens the
            # transaction that holds it; inside a business transaction it adds nothing.
            with transaction.atomic(using=alias, savepoint=False):
                cursor.execute(
                    "SELECT o_chain, o_seq, o_hash FROM compliance_audit_head(%s)", [guess[0] if guess else None]
                )
                event.chain, head_seq, event.prev_hash = cursor.fetchone()
                event.seq = head_seq + 1
                event.id = _insert_postgresql(cursor, event, digest, key_id, key)
                if event.id is None:  # this transaction holds the chain: nothing else can have appended
                    raise RuntimeError(f"audit chain {event.chain} moved while this transaction held it")
    _last_heads[connection] = (event.chain, event.seq, event.hash)


def _insert_postgresql(cursor, event: AuditEvent, digest: str, key_id: str, key: bytes) -> int | None:
    event.key_id = key_id
    event.hash = link_hash(event.prev_hash, event.chain, event.seq, digest, key)
    cursor.execute(
        "SELECT compliance_audit_insert(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            event.chain,
            event.seq,
            event.prev_hash,
            event.hash,
            event.key_id,
            event.created_at,
            event.actor,
            event.actor_name,
            event.action,
            event.target_type,
            event.target_id,
            event.payload,
            event.ip,
            event.request_id,
        ],
    )
    return cursor.fetchone()[0]


def _append_portable(event: AuditEvent, digest: str, alias: str) -> None:
    """Append to chain 1 under the database's write lock (SQLite: BEGIN IMMEDIATE, set in settings).

    SQLite has one writer at a time, so parallel chains would buy nothing there. It has no roles
    either: whoever can write the file can write the table, and the keyed link is what catches that.
    """
    key_id, key = current_key()
    # savepoint=False: inside a business transaction the event shares its fate; outside, this opens
    # the transaction that holds the write lock until commit.
    with transaction.atomic(using=alias, savepoint=False):
        newest = AuditEvent.objects.using(alias).filter(chain=1).order_by("-seq").values_list("seq", "hash").first()
        last_seq, last_hash = newest or (0, GENESIS_HASH)
        event.chain, event.seq, event.prev_hash, event.key_id = 1, last_seq + 1, last_hash, key_id
        event.hash = link_hash(event.prev_hash, event.chain, event.seq, digest, key)
        event.save(force_insert=True, using=alias)


def _count_committed(event: AuditEvent) -> None:
    _events_counter(event.action.partition(".")[0]).inc()
    _chain_length_gauge(event.chain).set(event.seq)


# The labelled metric children, looked up once each: labels() takes a lock and builds a key per call.
@functools.lru_cache(maxsize=256)
def _events_counter(action_prefix: str):
    return metrics.audit_events_total.labels(action_prefix=action_prefix)


@functools.lru_cache(maxsize=256)
def _chain_length_gauge(chain: int):
    return metrics.audit_chain_length.labels(chain=str(chain))


def _actor(actor: Actor) -> tuple[str, str]:
    if actor is None:
        return "system", ""
    if isinstance(actor, str):
        if len(actor) > 150 or not ACTOR_RE.match(actor):
            raise AuditInputError(f"actor {actor!r} is not a label such as 'system:rms'", extra={"field": "actor"})
        return actor, ""
    if getattr(actor, "is_anonymous", False) is True:
        return "anonymous", ""
    if isinstance(actor, AbstractBaseUser):
        if actor.pk is None:
            raise AuditInputError("actor is an unsaved user", extra={"field": "actor"})
        return f"user:{actor.pk}", actor.get_username()
    raise AuditInputError(
        f"actor must be a user, None or a label, not a {type(actor).__name__}", extra={"field": "actor"}
    )


def _target(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, models.Model):
        if target.pk is None:
            raise AuditInputError("target is an unsaved model instance", extra={"field": "target"})
        target_type, target_id = target._meta.label_lower, str(target.pk)
    elif isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], str):
        target_type, target_id = target[0], str(target[1])
    else:
        raise AuditInputError("target must be a saved model instance or a (type, id) pair", extra={"field": "target"})
    if not target_type or len(target_type) > 100 or len(target_id) > 64:
        raise AuditInputError("target type must be 1-100 characters and its id at most 64", extra={"field": "target"})
    return target_type, target_id


def _ip(ip: str | None) -> str:
    if ip is None or ip == "":
        return ""
    try:
        return _normalised_ip(ip)
    except (ValueError, TypeError):
        raise AuditInputError(f"ip {ip!r} is not an IPv4 or IPv6 address", extra={"field": "ip"}) from None


@functools.lru_cache(maxsize=4096)  # the same few client addresses recur; a bad one raises and is not kept
def _normalised_ip(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def checkpoint_create(*, force: bool = False) -> Checkpoint | None:
    """Sign the current head of every chain into a new checkpoint file and return it.

    Returns None without writing when the heads are those of the newest checkpoint already stored and
    that one is less than half an interval old (unless ``force``): two runs close together (the beat
    task and a manual one) add one file. Otherwise a file is written even if nothing moved, because
    ``verify_audit`` needs a recent checkpoint to tell a dropped tail from a quiet trail.
    Raises CheckpointError if the signing key or the storage fails.
    """
    heads: dict[int, tuple[int, str]] = {}
    for chain, last in AuditEvent.objects.values("chain").annotate(last=Max("seq")).values_list("chain", "last"):
        heads[chain] = (last, AuditEvent.objects.values_list("hash", flat=True).get(chain=chain, seq=last))
    if not force:
        names = checkpoints.checkpoint_names()
        if names:
            try:
                latest = checkpoints.read_checkpoint(names[-1])
            except CheckpointError:
                latest = None  # unreadable or untrusted: write a fresh one, verify_audit will report the bad one
            if latest is not None and latest.heads == heads:
                age = timezone.now() - dt.datetime.fromisoformat(latest.created_at)
                if age.total_seconds() < settings.AUDIT_CHECKPOINT_INTERVAL_SECONDS / 2:
                    return None
    checkpoint = checkpoints.write_checkpoint(
        heads=heads, events=sum(seq for seq, _ in heads.values()), now=timezone.now()
    )
    metrics.audit_last_checkpoint_seq.set(max((seq for seq, _ in heads.values()), default=0))
    return checkpoint


def audit_chain_limit_set(*, chains: int, using: str = "default") -> int | None:
    """Make the database accept audit chains 1..``chains`` (PostgreSQL); return the previous limit.

    The limit is the stored function ``compliance_audit_chain_limit`` (migration 0005), which only its
    owner may replace: run this as the owner role. Returns None on a database without one (SQLite,
    whose single chain needs no limit). Raises ValueError for a limit outside 1-64.
    """
    if not isinstance(chains, int) or not 1 <= chains <= 64:
        raise ValueError(f"the number of audit chains must be 1-64, not {chains!r}")
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('compliance_audit_chain_limit()'::regprocedure)")
        previous = int(cursor.fetchone()[0].split("SELECT ")[1].split()[0])
        # The same text as migration 0005, so audit.checks sees an unaltered definition.
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION compliance_audit_chain_limit() RETURNS integer"
            f" LANGUAGE sql STABLE AS $$ SELECT {int(chains)} $$"
        )
    return previous
