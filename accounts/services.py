"""Organisation management: roles, removal and per-account grants.

The rules, in one place: the Owner does everything in the organisation; an Admin manages members,
grants and broker accounts of their own organisation but cannot remove or demote the Owner, nor
make anyone Owner; nobody reaches another organisation (those look like "not found").
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from accounts import audit
from accounts.errors import (
    GrantNotAllowed,
    InvalidRole,
    MemberNotFound,
    NotOrganisationManager,
    OrganisationNotFound,
    OwnerProtected,
)
from accounts.models import Membership, Organisation, Role, User
from accounts.selectors import MANAGER_ROLES
from brokers.errors import BrokerAccountNotFound
from brokers.models import BrokerAccount
from infra import sockets

GrantAccess = Literal["view", "trade"]
_VIEW = "brokers.view_brokeraccount"
_TRADE = "brokers.trade_brokeraccount"


def role_group_name(role: str) -> str:
    """Return the name of the Django group that carries ``role``'s model permissions."""
    return Role(role).label


def sync_role_groups(*, user: User) -> None:
    """Make the user's role groups the roles they hold in any organisation."""
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    role_groups = Group.objects.filter(name__in=[role.label for role in Role])
    user.groups.remove(*[g for g in role_groups if g.name not in {role_group_name(r) for r in roles}])
    user.groups.add(*[g for g in role_groups if g.name in {role_group_name(r) for r in roles}])


def _manager_membership(*, actor, organisation: Organisation) -> Membership:
    membership = Membership.objects.filter(user=actor, organisation=organisation).first()
    if membership is None:
        raise OrganisationNotFound(
            f"Organisation {organisation.slug!r} was not found.", extra={"slug": organisation.slug}
        )
    if membership.role not in MANAGER_ROLES:
        raise NotOrganisationManager("Only the Owner and Admins manage the organisation.")
    return membership


def _target_membership(*, organisation: Organisation, user_id: int) -> Membership:
    membership = Membership.objects.select_related("user").filter(organisation=organisation, user_id=user_id).first()
    if membership is None:
        raise MemberNotFound(f"User {user_id} is not a member of this organisation.", extra={"user_id": user_id})
    return membership


def membership_add(*, actor, organisation: Organisation, user: User, role: str, request=None) -> Membership:
    """Add ``user`` to the organisation with ``role`` and return the membership.

    Raises OrganisationNotFound/NotOrganisationManager for an actor who may not manage it,
    InvalidRole for an unknown role or for Owner (there is one Owner, made by transfer).
    """
    _manager_membership(actor=actor, organisation=organisation)
    if role not in Role.values or role == Role.OWNER:
        raise InvalidRole(f"{role!r} is not a role a member can be added with.", extra={"role": role})
    with transaction.atomic():
        membership, _ = Membership.objects.get_or_create(user=user, organisation=organisation, defaults={"role": role})
        sync_role_groups(user=user)
    audit.record(
        actor=actor,
        action="rbac.member_added",
        target=membership,
        payload={"role": role, "user": user.pk},
        request=request,
    )
    return membership


def membership_set_role(*, actor, organisation: Organisation, user_id: int, role: str, request=None) -> Membership:
    """Give a member a new role and return the membership.

    Making someone Owner transfers ownership: only the Owner may do it, and becomes an Admin.
    Raises OrganisationNotFound, NotOrganisationManager, MemberNotFound, InvalidRole, and
    OwnerProtected when the Owner would be demoted by anyone (including themselves) or an Admin
    tries to appoint an Owner.
    """
    actor_membership = _manager_membership(actor=actor, organisation=organisation)
    if role not in Role.values:
        raise InvalidRole(f"{role!r} is not a role.", extra={"role": role, "roles": list(Role.values)})
    target = _target_membership(organisation=organisation, user_id=user_id)
    old_role = target.role
    if old_role == role:
        return target
    if target.role == Role.OWNER:
        raise OwnerProtected("The Owner cannot be demoted; the Owner may transfer ownership instead.")
    if role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise OwnerProtected("Only the Owner can transfer ownership.")
    with transaction.atomic():
        if role == Role.OWNER:
            # One Owner per organisation (a database constraint): step down first, then promote.
            Membership.objects.filter(pk=actor_membership.pk).update(role=Role.ADMIN)
            sync_role_groups(user=actor)
        Membership.objects.filter(pk=target.pk).update(role=role)
        target.role = role
        sync_role_groups(user=target.user)
        sockets.end_user(user_id, sockets.ACCESS)  # open sockets close; their reconnects see the new role
    audit.record(
        actor=actor,
        action="rbac.role_changed",
        target=target,
        payload={"organisation": organisation.slug, "user": user_id, "from": old_role, "to": role},
        request=request,
    )
    return target


def membership_remove(*, actor, organisation: Organisation, user_id: int, request=None) -> None:
    """Remove a member from the organisation, with their grants on its broker accounts.

    Raises OrganisationNotFound, NotOrganisationManager, MemberNotFound, and OwnerProtected for the Owner.
    """
    _manager_membership(actor=actor, organisation=organisation)
    target = _target_membership(organisation=organisation, user_id=user_id)
    if target.role == Role.OWNER:
        raise OwnerProtected("The Owner cannot be removed from the organisation.")
    with transaction.atomic():
        for account in BrokerAccount.objects.filter(organisation=organisation):
            remove_perm(_TRADE, target.user, account)
            remove_perm(_VIEW, target.user, account)
        target.delete()
        sync_role_groups(user=target.user)
        sockets.end_user(user_id, sockets.ACCESS)
    audit.record(
        actor=actor,
        action="rbac.member_removed",
        target=("accounts.membership", f"{organisation.pk}:{user_id}"),
        payload={"organisation": organisation.slug, "user": user_id, "role": target.role},
        request=request,
    )


def _managed_account(*, actor, account_id: int) -> BrokerAccount:
    account = BrokerAccount.objects.select_related("organisation").filter(pk=account_id).first()
    membership = (
        Membership.objects.filter(user=actor, organisation=account.organisation).first()
        if account is not None
        else None
    )
    if account is None or membership is None:
        raise BrokerAccountNotFound(f"Broker account {account_id} was not found.", extra={"account_id": account_id})
    if membership.role not in MANAGER_ROLES:
        raise NotOrganisationManager("Only the Owner and Admins grant access to broker accounts.")
    return account


def grant_account(*, actor, account_id: int, user_id: int, access: GrantAccess, request=None) -> BrokerAccount:
    """Let a member view (or view and trade) a broker account of the organisation; return the account.

    Raises BrokerAccountNotFound, NotOrganisationManager, MemberNotFound (the grantee must be in the
    account's organisation) and GrantNotAllowed (trading only for Traders; nothing for Compliance
    members; unknown access).
    """
    account = _managed_account(actor=actor, account_id=account_id)
    target = _target_membership(organisation=account.organisation, user_id=user_id)
    if access not in ("view", "trade"):
        raise GrantNotAllowed(f"{access!r} is not an access level; use 'view' or 'trade'.", extra={"access": access})
    if target.role == Role.COMPLIANCE:
        # Compliance reads the organisation through its reports; an account grant would add nothing but a
        # view of live trading pages it has no business on (docs/rbac.md).
        raise GrantNotAllowed(
            "Compliance members read the accounts through the reports; they are granted no account.",
            extra={"role": target.role},
        )
    if access == "trade" and target.role != Role.TRADER:
        raise GrantNotAllowed(
            "Only Traders are granted trading; Owners and Admins trade every account already.",
            extra={"role": target.role},
        )
    with transaction.atomic():
        assign_perm(_VIEW, target.user, account)
        if access == "trade":
            assign_perm(_TRADE, target.user, account)
    audit.record(
        actor=actor, action="rbac.grant", target=account, payload={"user": user_id, "access": access}, request=request
    )
    return account


def revoke_account(*, actor, account_id: int, user_id: int, access: GrantAccess, request=None) -> BrokerAccount:
    """Withdraw trading (``trade``) or all access (``view``) to a broker account; return the account.

    Raises BrokerAccountNotFound, NotOrganisationManager, MemberNotFound and GrantNotAllowed.
    """
    account = _managed_account(actor=actor, account_id=account_id)
    target = _target_membership(organisation=account.organisation, user_id=user_id)
    if access not in ("view", "trade"):
        raise GrantNotAllowed(f"{access!r} is not an access level; use 'view' or 'trade'.", extra={"access": access})
    with transaction.atomic():
        remove_perm(_TRADE, target.user, account)
        if access == "view":
            remove_perm(_VIEW, target.user, account)
            sockets.end_user(user_id, sockets.ACCESS)  # no more rows of this account on open sockets
    audit.record(
        actor=actor, action="rbac.revoke", target=account, payload={"user": user_id, "access": access}, request=request
    )
    return account
