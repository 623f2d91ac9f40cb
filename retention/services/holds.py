"""Legal holds: set or lift, always audited."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Organisation, User
from audit.services import audit_record
from retention.errors import RetentionError
from retention.models import LegalHold


def legal_hold_reason(reason: str) -> str:
    """Return the reason stripped; raise RetentionError (``legal_hold_reason``) for an empty, over-long or
    NUL-carrying one."""
    reason = reason.strip()
    if not reason or "\x00" in reason or len(reason) > 300:
        raise RetentionError("Give the reason for the hold, in at most 300 characters.", code="legal_hold_reason")
    return reason


def legal_hold_set(*, actor: User, organisation: Organisation, active: bool, reason: str) -> LegalHold:
    """Put ``organisation`` under a legal hold or lift it, and audit the change; return the hold.

    Only platform staff (superusers) may; raises RetentionError otherwise, or for an empty reason.
    """
    if not actor.is_superuser:
        raise RetentionError("Only platform staff may set or lift a legal hold.", code="legal_hold_forbidden")
    reason = legal_hold_reason(reason)
    with transaction.atomic():
        hold, created = LegalHold.objects.select_for_update().get_or_create(
            organisation=organisation, defaults={"active": active, "reason": reason, "changed_by": actor}
        )
        if not created:
            hold.active, hold.reason, hold.changed_by = active, reason, actor
            hold.save()
        audit_record(
            actor=actor,
            action="retention.legal_hold_on" if active else "retention.legal_hold_off",
            target=organisation,
            payload={"organisation": organisation.slug, "reason": reason},
        )
    return hold
