"""The only way to reach a broker account: every view, API route, task and consumer goes through here."""

from __future__ import annotations

from typing import Literal

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.models import Membership, Role
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.models import BrokerAccount

Access = Literal["view", "trade", "manage"]
_MANAGERS = {Role.OWNER, Role.ADMIN}


def _roles_by_org(user) -> dict[int, str]:
    return dict(Membership.objects.filter(user=user).values_list("organisation_id", "role"))


def account_list_for_user(*, user, access: Access = "view") -> QuerySet[BrokerAccount]:
    """Return the accounts ``user`` may reach for ``access``, with their organisation loaded.

    Owners and Admins reach every account of their organisations; Traders the accounts granted
    to them (``trade`` needs the trade grant); Viewers the accounts granted for viewing, and never
    for ``trade`` or ``manage``.
    """
    if not user.is_authenticated:
        return BrokerAccount.objects.none()
    roles = _roles_by_org(user)
    managed = [org for org, role in roles.items() if role in _MANAGERS]
    queryset = BrokerAccount.objects.filter(organisation_id__in=managed)
    if access != "manage":
        member_orgs = [
            org for org, role in roles.items() if role == Role.TRADER or (role == Role.VIEWER and access == "view")
        ]
        perm = "brokers.trade_brokeraccount" if access == "trade" else "brokers.view_brokeraccount"
        granted = get_objects_for_user(user, perm, klass=BrokerAccount, accept_global_perms=False).filter(
            organisation_id__in=member_orgs
        )
        queryset = queryset | granted
    return queryset.select_related("organisation").distinct()


def account_get_for_user(*, user, account_id: int, access: Access = "view") -> BrokerAccount:
    """Return the account if ``user`` may reach it for ``access``.

    Raises BrokerAccountNotFound when it does not exist or the user may not even view it, and
    BrokerAccountForbidden when the user may view it but not perform ``access``.
    """
    account = account_list_for_user(user=user, access=access).filter(pk=account_id).first()
    if account is not None:
        return account
    if access != "view" and account_list_for_user(user=user, access="view").filter(pk=account_id).exists():
        raise BrokerAccountForbidden(
            f"You may not {access} on broker account {account_id}.", extra={"account_id": account_id}
        )
    raise BrokerAccountNotFound(f"Broker account {account_id} was not found.", extra={"account_id": account_id})
