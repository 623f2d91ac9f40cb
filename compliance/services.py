"""Writes of the compliance domain: appending audit events (and, in checkpoints.py, signing the head)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, models, router, transaction
from django.utils import timezone

from compliance import metrics
from compliance.chain import GENESIS_HASH, event_hash
from compliance.errors import AuditInputError
from compliance.models import AuditEvent
from terminal.lib.canonical_json import CanonicalJSONError, canonical_dumps
from terminal.lib.request_id import get_request_id

# The key of the transaction-scoped advisory lock that serialises appends on PostgreSQL ("audit").
CHAIN_LOCK_KEY = 0x6175646974
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
ACTOR_RE = re.compile(r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.@-]+)*$")

Actor = AbstractBaseUser | str | None
Target = models.Model | tuple[str, Any] | None


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
    canonical JSON form (see terminal.lib.canonical_json). ``request_id`` defaults to the id of the
    request being served.

    Called inside a transaction, the event commits or rolls back with it, and the chain stays locked
    until that transaction ends; keep such transactions short. Outside one, the event commits at once.

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

    alias = router.db_for_write(AuditEvent)
    # savepoint=False: inside a business transaction the event shares its fate; outside, this opens
    # the transaction that holds the chain lock until commit.
    with transaction.atomic(using=alias, savepoint=False):
        prev_seq, prev_hash = _lock_chain_head(alias)
        event = AuditEvent(
            seq=prev_seq + 1,
            created_at=timezone.now(),  # taken under the lock, so time never runs backwards along the chain
            actor=actor_label,
            actor_name=actor_name,
            action=action,
            target_type=target_type,
            target_id=target_id,
            payload=payload_text,
            ip=ip_text,
            request_id=request_id,
            prev_hash=prev_hash,
        )
        event.hash = event_hash(
            prev_hash=prev_hash,
            seq=event.seq,
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
        event.save(force_insert=True, using=alias)
        transaction.on_commit(lambda: _count_committed(event), using=alias)
    return event


def _lock_chain_head(alias: str) -> tuple[int, str]:
    """Take the chain lock for the rest of the transaction; return the head's (seq, hash).

    PostgreSQL: a transaction-scoped advisory lock, then a read of the newest row. Both go in one
    round trip, but as two statements: under READ COMMITTED each statement takes a fresh snapshot, so
    the read sees everything committed by whoever held the lock before us.
    SQLite: the connection opens transactions with BEGIN IMMEDIATE (settings), which already holds
    the single write lock.
    """
    connection = connections[alias]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    head_sql = f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"  # noqa: S608 - constant table name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY}); {head_sql}")
            cursor.nextset()
        else:
            cursor.execute(head_sql)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def _count_committed(event: AuditEvent) -> None:
    metrics.audit_events_total.labels(action_prefix=event.action.split(".", 1)[0]).inc()
    metrics.audit_chain_length.set(event.seq)


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
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise AuditInputError(f"ip {ip!r} is not an IPv4 or IPv6 address", extra={"field": "ip"}) from None
