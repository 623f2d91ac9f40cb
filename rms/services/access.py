"""Which organisations a user manages (is Owner or Admin of): the check the kill switch and the
limits share."""

from __future__ import annotations

from accounts.models import Membership, Role


def _roles(user) -> dict[int, str]:
    return dict(Membership.objects.filter(user=user).values_list("organisation_id", "role"))


def _managed_orgs(user) -> set[int]:
    return {org for org, role in _roles(user).items() if role in {Role.OWNER, Role.ADMIN}}
