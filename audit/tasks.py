"""Periodic work of the compliance domain (queue: reports)."""

from __future__ import annotations

from celery import shared_task

from audit.services import checkpoint_create


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100, ignore_result=True)
def audit_checkpoint() -> str | None:
    """Sign the audit chain heads into a new checkpoint; idempotent (no file when nothing changed).

    Returns the name of the file written, or None.
    """
    checkpoint = checkpoint_create()
    return checkpoint.name if checkpoint else None
