"""Strategy definitions: a named strategy of an organisation, a registered kind and its parameters
validated by the kind's schema (``strategies.registry.validate_params``)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Organisation
from audit.services import audit_record
from strategies.errors import StrategyForbidden, StrategyInvalid, StrategyNameTaken
from strategies.models import StrategyDefinition
from strategies.registry import validate_params
from strategies.services.access import WRITERS, clean_text, require_role


def _params(kind: str, raw: object) -> dict[str, Any]:
    """The parameters as their schema reads them (defaults filled in), JSON-ready; raises
    StrategyUnknown or StrategyInvalid (422, naming the field)."""
    return validate_params(kind, raw).model_dump(mode="json")


def strategy_create(
    *,
    actor,
    organisation: Organisation,
    name: str,
    kind: str,
    params: object,
    description: str = "",
) -> StrategyDefinition:
    """Create a definition; return it.

    Raises StrategyForbidden (403) unless the actor is an Owner, Admin or Trader of the organisation,
    StrategyUnknown / StrategyInvalid (422, ``extra["field"]``) for an unknown kind or parameters that
    fail its schema, StrategyNameTaken (409) for a name the organisation already uses.
    """
    require_role(
        user=actor, organisation_id=organisation.pk, roles=WRITERS, error=StrategyForbidden, what="create strategies"
    )
    name = clean_text(name, field="name", max_length=100, required=True, error=StrategyInvalid)
    description = clean_text(description, field="description", max_length=2000, required=False, error=StrategyInvalid)
    if not isinstance(kind, str) or len(kind) > 64:
        raise StrategyInvalid("kind must be the name of a registered strategy.", extra={"field": "kind"})
    clean = _params(kind, params)
    try:
        with transaction.atomic():
            definition = StrategyDefinition.objects.create(
                organisation=organisation,
                name=name,
                kind=kind,
                params=clean,
                description=description,
                created_by=actor,
            )
            audit_record(
                actor=actor,
                action="strategy.definition.created",
                target=definition,
                payload={"organisation_id": organisation.pk, "name": name, "kind": kind, "params": clean},
            )
    except IntegrityError:
        raise StrategyNameTaken(f"A strategy named {name!r} exists already.", extra={"field": "name"}) from None
    return definition


def strategy_update(
    *,
    actor,
    definition: StrategyDefinition,
    name: str | None = None,
    params: object = None,
    description: str | None = None,
) -> StrategyDefinition:
    """Change a definition's name, parameters (validated against its kind) or description; return it.

    Deployments keep the parameters they were deployed with. Raises as ``strategy_create``.
    """
    require_role(
        user=actor,
        organisation_id=definition.organisation_id,
        roles=WRITERS,
        error=StrategyForbidden,
        what="change strategies",
    )
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = clean_text(name, field="name", max_length=100, required=True, error=StrategyInvalid)
    if description is not None:
        changes["description"] = clean_text(
            description, field="description", max_length=2000, required=False, error=StrategyInvalid
        )
    if params is not None:
        changes["params"] = _params(definition.kind, params)
    if not changes:
        return definition
    try:
        with transaction.atomic():
            StrategyDefinition.objects.filter(pk=definition.pk).update(**changes)
            audit_record(
                actor=actor,
                action="strategy.definition.updated",
                target=definition,
                payload={"organisation_id": definition.organisation_id, **changes},
            )
    except IntegrityError:
        raise StrategyNameTaken(
            f"A strategy named {changes.get('name')!r} exists already.", extra={"field": "name"}
        ) from None
    definition.refresh_from_db()
    return definition
