from __future__ import annotations

import json
from typing import Any

from django.db import models


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained audit trail.

    Rows are written only by ``audit.services.audit_record`` and never changed: database triggers
    (migration 0002) reject UPDATE, DELETE and TRUNCATE, and the production role may only SELECT and
    append through the stored functions of migration 0005 (deploy/postgres/).

    The trail is a small, fixed set of parallel chains (``AUDIT_CHAINS``) so that concurrent
    transactions do not queue behind one lock. Within a chain, ``seq`` follows the chain's newest
    event under the chain's lock, not a database sequence, so the numbering is gapless: a
    rolled-back event leaves no hole.
    ``hash`` is keyed with a secret the database does not hold and covers every other column and the
    previous event's hash in the same chain (``audit.chain``), so ``manage.py verify_audit`` can
    prove that no row was added, altered, removed or re-ordered. ``id`` is only a storage key (the
    admin needs a single-column primary key); it may have gaps and is not part of the chain. Events
    are ordered across chains by ``created_at``.

    The actor is stored as a label (``user:42`` with the username at the time, ``system``,
    ``system:rms``) rather than a foreign key: the trail must outlive the rows it mentions, and a
    cascading delete or SET NULL would be an UPDATE the triggers reject.
    """

    id = models.BigAutoField(primary_key=True)
    chain = models.PositiveSmallIntegerField(help_text="Which of the parallel chains the event belongs to.")
    seq = models.BigIntegerField(help_text="Gapless position within its chain, from 1.")
    created_at = models.DateTimeField(help_text="When the event was recorded (UTC, microseconds).")
    actor = models.CharField(max_length=150, help_text="user:<id>, anonymous, system or system:<part>.")
    actor_name = models.CharField(max_length=150, blank=True, help_text="The username at the time of the event.")
    action = models.CharField(max_length=100, help_text="Dotted name such as order.placed.")
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the target, if any.")
    target_id = models.CharField(max_length=64, blank=True)
    payload = models.TextField(help_text="Canonical JSON (sorted keys, no whitespace); hashed byte for byte.")
    # Text, not PostgreSQL's inet: the hash covers the exact characters, and inet may print an address
    # differently from how it was written (IPv4-mapped IPv6, for one).
    ip = models.CharField(max_length=45, blank=True, help_text="Client address, normalised by Python's ipaddress.")
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64, help_text="SHA-256 (hex) of the chain's previous event; zeros first.")
    hash = models.CharField(max_length=64, help_text="HMAC-SHA-256 (hex) over prev_hash, chain, seq and this row.")
    key_id = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="Which AUDIT_HMAC_KEYS key linked the row; empty for plain SHA-256 links from before keyed ones.",
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "audit event"
        permissions = [("view_reports", "Can view compliance reports and the audit trail")]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_event_chain_seq")]
        # Plain B-tree indexes for the admin's filters. Declared here rather than with db_index so that
        # PostgreSQL gets no extra LIKE-pattern indexes: every index is paid for on each append.
        indexes = [
            models.Index(fields=["created_at"], name="audit_event_created_at"),
            models.Index(fields=["actor", "created_at"], name="audit_event_actor"),
            models.Index(fields=["action", "created_at"], name="audit_event_action"),
            # The compliance reports find an organisation's events by their target (its accounts, orders,
            # kill switches) and the audit-log browser filters by target.
            models.Index(fields=["target_type", "target_id"], name="audit_event_target"),
        ]

    def __str__(self) -> str:
        return f"{self.chain}/{self.seq} {self.action} by {self.actor}"

    @property
    def payload_data(self) -> Any:
        """Return the payload parsed back into Python (Decimals and datetimes come back as strings)."""
        return json.loads(self.payload)
