"""Reads of the accounts domain."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.errors import NotOrganisationManager, NotReportReader, OrganisationNotFound
from accounts.models import ApiKey, Membership, Organisation, Role, SealedTOTPDevice

MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Who reads the organisation's compliance reports, its audit trail and their exports.
REPORT_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.COMPLIANCE})
# Roles that may trade some account of the organisation (Owners and Admins all, Traders when granted).
TRADING_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.TRADER})


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


def organisation_get_for_reports(*, user, slug: str) -> tuple[Organisation, Membership]:
    """Return the organisation named by ``slug`` and the user's membership, for its compliance reports.

    Raises OrganisationNotFound as ``organisation_get_for_user`` does, and NotReportReader when the user's
    role there is not one of REPORT_ROLES (Owner, Admin, Compliance).
    """
    organisation, membership = organisation_get_for_user(user=user, slug=slug)
    if membership.role not in REPORT_ROLES:
        raise NotReportReader(
            "Only the Owner, Admins and Compliance members read the organisation's reports.", extra={"slug": slug}
        )
    return organisation, membership


def report_organisation_list_for_user(*, user) -> QuerySet[Organisation]:
    """The organisations whose reports ``user`` reads (an Owner, Admin or Compliance member), by name."""
    if not user.is_authenticated:
        return Organisation.objects.none()
    return Organisation.objects.filter(memberships__user=user, memberships__role__in=REPORT_ROLES).order_by("name")


def trades_nowhere(*, user) -> bool:
    """Whether ``user`` is a member only as Compliance: no role of theirs may trade any account, nor could
    one through a grant. False for a user in no organisation (nothing to decide) and for a superuser."""
    if user.is_superuser:
        return False
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    return bool(roles) and not roles & TRADING_ROLES and roles <= {Role.COMPLIANCE}


def organisation_list_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organisation").order_by("organisation__name")


def member_list(*, organisation: Organisation) -> QuerySet[Membership]:
    return Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username")


def api_key_list(*, user) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user)
