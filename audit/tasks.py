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


VERIFY_LOCK = "audit:verify:running"  # held in the cache while a requested verification runs
VERIFY_LOCK_SECONDS = 3600


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500, ignore_result=True)
def audit_verify(requested_by: str = "system") -> bool:
    """Verify the whole trail against the signed checkpoints (``verify_trail``) and record the outcome
    as the event ``audit.verified`` (what the report pages show as the latest verification). Returns
    whether it passed. ``requested_by`` is the audit label of who asked (``user:42``), kept in the event.
    Idempotent: running it twice records two verifications of the same trail."""
    from django.core.cache import cache

    from audit.services import audit_record
    from audit.verification import verify_trail

    try:
        result = verify_trail()
        audit_record(
            actor="system:audit",
            action="audit.verified",
            payload={
                "ok": result.ok,
                "verified": result.verified,
                "checkpoints": result.checkpoints,
                "breaks": [str(problem) for problem in result.breaks[:20]],
                "problems": result.problems[:20],
                "requested_by": requested_by[:150],
            },
        )
        return result.ok
    finally:
        cache.delete(VERIFY_LOCK)
