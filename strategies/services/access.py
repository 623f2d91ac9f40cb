"""Who may do what with an organisation's strategies: its Owners and Admins manage algo ids; its
Owners, Admins and Traders write definitions and run deployments; Viewers only read."""

from __future__ import annotations

from accounts.models import Membership, Role
from strategies.errors import StrategyError

MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
WRITERS = frozenset({Role.OWNER, Role.ADMIN, Role.TRADER})


def role_in(*, user, organisation_id: int) -> str | None:
    """The user's role in the organisation, or None (not a member, anonymous or the system)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user=user, organisation_id=organisation_id).values_list("role", flat=True).first()


def require_role(*, user, organisation_id: int, roles: frozenset[str], error: type[StrategyError], what: str) -> str:
    """Return the user's role if it is one of ``roles``; raise ``error`` (403) naming ``what`` otherwise."""
    role = role_in(user=user, organisation_id=organisation_id)
    if role not in roles:
        raise error(
            f"Your role in this organisation does not allow you to {what}.",
            extra={"role": role or "none", "organisation_id": organisation_id},
        )
    return role


def clean_text(value: object, *, field: str, max_length: int, required: bool, error: type) -> str:
    """``value`` as a stripped string of at most ``max_length`` characters without control characters;
    raise ``error`` (422) naming the field otherwise."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise error(f"{field} must be text.", extra={"field": field})
    value = value.strip()
    if required and not value:
        raise error(f"{field} is required.", extra={"field": field})
    if len(value) > max_length:
        raise error(f"{field} can be at most {max_length} characters.", extra={"field": field, "max": max_length})
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise error(f"{field} contains control characters.", extra={"field": field})
    return value
