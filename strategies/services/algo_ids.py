"""An organisation's exchange-approved algo ids, managed by its Owner and Admins: created, and
deactivated rather than deleted (orders keep naming them)."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from accounts.models import Organisation
from audit.services import audit_record
from strategies.errors import AlgoIdForbidden, AlgoIdInvalid, AlgoIdTaken
from strategies.models import AlgoId
from strategies.services.access import MANAGERS, clean_text, require_role

# What exchanges issue and brokers pass on: letters, digits and a few separators.
CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")


def algo_id_create(*, actor, organisation: Organisation, code: str, description: str = "") -> AlgoId:
    """Record an algo id of the organisation; return it.

    Raises AlgoIdForbidden (403) unless the actor is its Owner or an Admin, AlgoIdInvalid (422) for a
    malformed code, AlgoIdTaken (409) for a code the organisation has already.
    """
    require_role(
        user=actor, organisation_id=organisation.pk, roles=MANAGERS, error=AlgoIdForbidden, what="manage algo ids"
    )
    if not isinstance(code, str) or not CODE_RE.fullmatch(code.strip()):
        raise AlgoIdInvalid("An algo id is 1 to 40 letters, digits, '.', '_', '/' or '-'.", extra={"field": "code"})
    code = code.strip()
    description = clean_text(description, field="description", max_length=200, required=False, error=AlgoIdInvalid)
    try:
        with transaction.atomic():
            algo_id = AlgoId.objects.create(
                organisation=organisation, code=code, description=description, created_by=actor
            )
            audit_record(
                actor=actor,
                action="strategy.algo_id.created",
                target=algo_id,
                payload={"organisation_id": organisation.pk, "code": code, "description": description},
            )
    except IntegrityError:
        raise AlgoIdTaken(f"The organisation has algo id {code!r} already.", extra={"field": "code"}) from None
    return algo_id


def algo_id_deactivate(*, actor, algo_id: AlgoId, reason: str = "") -> AlgoId:
    """Deactivate an algo id (a live deployment using it can no longer start or place); return it.

    Deactivating an inactive one changes nothing. Raises AlgoIdForbidden (403) unless the actor is the
    organisation's Owner or an Admin.
    """
    require_role(
        user=actor,
        organisation_id=algo_id.organisation_id,
        roles=MANAGERS,
        error=AlgoIdForbidden,
        what="manage algo ids",
    )
    reason = clean_text(reason, field="reason", max_length=300, required=False, error=AlgoIdInvalid)
    with transaction.atomic():
        if AlgoId.objects.filter(pk=algo_id.pk, is_active=True).update(is_active=False):
            audit_record(
                actor=actor,
                action="strategy.algo_id.deactivated",
                target=algo_id,
                payload={"organisation_id": algo_id.organisation_id, "code": algo_id.code, "reason": reason},
            )
    algo_id.refresh_from_db()
    return algo_id
