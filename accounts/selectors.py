"""Reads of the accounts domain."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.errors import NotOrganisationManager, OrganisationNotFound
from accounts.models import ApiKey, Membership, Organisation, Role, SealedTOTPDevice

MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


def user_has_confirmed_totp(*, user) -> bool:
    return SealedTOTPDevice.objects.filter(user=user, confirmed=True).exists()


def membership_get(*, user, organisation: Organisation) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organisation=organisation).first()


def organisation_get_for_user(*, user, slug: str, manage: bool = False) -> tuple[Organisation, Membership]:
    """Return the organisation named by ``slug`` and the user's membership in it.

    Raises OrganisationNotFound when there is no such organisation or the user is not a member, and
    NotOrganisationManager when ``manage`` is asked and the user is neither Owner nor Admin there.
    """
    membership = (
        Membership.objects.select_related("organisation").filter(user=user, organisation__slug=slug).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise OrganisationNotFound(f"Organisation {slug!r} was not found.", extra={"slug": slug})
    if manage and membership.role not in MANAGER_ROLES:
        raise NotOrganisationManager("Only the Owner and Admins manage the organisation.", extra={"slug": slug})
    return membership.organisation, membership


def organisation_list_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation").order_by("organisation__name")


def member_list(*, organisation: Organisation) -> QuerySet[Membership]:
    return Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username")


def api_key_list(*, user) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user)
