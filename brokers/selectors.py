"""How a user reaches broker accounts: every view, API route and consumer that acts on or shows an
account for a user goes through ``account_get_for_user`` or ``account_list_for_user``.

Two kinds of caller read accounts without them: an organisation's pages for its Owners and Admins
(members, limits, compliance reports), which list the organisation's accounts once
``accounts.selectors.organisation_get_for_user(manage=True)`` has passed (the reach these rules give
those roles), and tasks acting for the system (the intraday square-off, the kill switch).

It also answers how each broker family names our instruments, both ways (``instrument_map``,
``instrument_id_for_token``, ``broker_symbol_for``): re-exported from ``brokers.instrument_map``,
which broker adapters and feeds import directly (they may not reach ``accounts``, which this
module reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import get_objects_for_user

from accounts.models import Membership, Organisation, Role, User
from brokers.adapters.registry import UnknownBroker, family, registered_codes
from brokers.crypto import SecretError
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.instrument_map import (  # noqa: F401 - the mapping's selectors, re-exported
    BrokerSymbol,
    InstrumentMap,
    broker_instrument_count,
    broker_symbol_for,
    instrument_id_for_token,
    instrument_map,
)
from brokers.models import BrokerAccount, BrokerSession
from brokers.services.credentials import broker_credentials_get
from brokers.services.sessions import SessionState, session_state

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
    """Return the account, with its organisation loaded, if ``user`` may reach it for ``access``.

    Raises BrokerAccountNotFound when it does not exist or the user may not even view it, and
    BrokerAccountForbidden when the user may view it but not perform ``access``, or is a Compliance
    member of its organisation (whose reports name the account: it is refused, not told the account
    does not exist).

    The same rules as ``account_list_for_user`` (whose results it matches, tests/brokers), answered
    in one SQL statement that yields both "may view" and "may ``access``": this runs on every order
    and every account page, and the ORM compiling guardian's nested querysets was about a fifth of an
    order request's CPU.
    """
    if not user.is_authenticated:
        raise BrokerAccountNotFound(f"Broker account {account_id} was not found.", extra={"account_id": account_id})
    view_roles = (Role.TRADER, Role.VIEWER)
    access_roles = {"view": view_roles, "trade": (Role.TRADER,), "manage": ()}[access]
    perms = _grant_permission_ids()
    account_columns = [f.column for f in BrokerAccount._meta.concrete_fields]
    org_columns = [f.column for f in Organisation._meta.concrete_fields]
    granted = "%s" if user.is_superuser else _GRANTED  # guardian: a superuser holds every object permission
    in_access_roles = ", ".join(["%s"] * len(access_roles))
    access_sql = f"(m.role IN ({in_access_roles}) AND {granted})" if access_roles else "FALSE"
    # Table and column names come from the models, every value is a bound parameter.
    sql = (
        "SELECT "  # noqa: S608
        + ", ".join([f"a.{c}" for c in account_columns] + [f"o.{c}" for c in org_columns])
        + f", m.role, m.role IN (%s, %s) OR (m.role IN (%s, %s) AND {granted}), m.role IN (%s, %s) OR {access_sql}"
        f" FROM {BrokerAccount._meta.db_table} a"
        f" JOIN {Organisation._meta.db_table} o ON o.id = a.organisation_id"
        f" JOIN {Membership._meta.db_table} m ON m.organisation_id = a.organisation_id AND m.user_id = %s"
        " WHERE a.id = %s"
    )

    def grant_params(perm_id: int) -> list:
        if user.is_superuser:
            return [True]
        return [user.pk, perms["content_type"], perm_id, perms["content_type"], perm_id, user.pk]

    params = [Role.OWNER, Role.ADMIN, *view_roles, *grant_params(perms["view"]), Role.OWNER, Role.ADMIN]
    if access_roles:
        params += [*access_roles, *grant_params(perms["trade" if access == "trade" else "view"])]
    params += [user.pk, account_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None and row[-3] == Role.COMPLIANCE:
        raise BrokerAccountForbidden(
            f"A Compliance member may not {access} on broker account {account_id}.",
            extra={"account_id": account_id},
        )
    if row is None or not row[-2]:
        raise BrokerAccountNotFound(f"Broker account {account_id} was not found.", extra={"account_id": account_id})
    if not row[-1]:
        raise BrokerAccountForbidden(
            f"You may not {access} on broker account {account_id}.", extra={"account_id": account_id}
        )
    n = len(account_columns)
    account_names = [f.attname for f in BrokerAccount._meta.concrete_fields]
    org_names = [f.attname for f in Organisation._meta.concrete_fields]
    account = BrokerAccount.from_db(connection.alias, account_names, row[:n])
    account.organisation = Organisation.from_db(connection.alias, org_names, row[n : n + len(org_columns)])
    return account


@dataclass(frozen=True, slots=True)
class AccountAccess:
    """An account the user may view, and whether they may trade on it."""

    account: BrokerAccount
    may_trade: bool


def account_access_list_for_user(*, user) -> list[AccountAccess]:
    """Every account ``user`` may view, by id, each with whether they may trade on it: the rules of
    ``account_list_for_user`` (view, and trade) in one statement, for a page that shows the accounts
    to choose from, works on one of them and offers trading only where allowed (the dashboard).
    Guardian's nested querysets cost the ORM several milliseconds to compile on each call."""
    if not user.is_authenticated:
        return []
    perms = _grant_permission_ids()
    account_columns = [f.column for f in BrokerAccount._meta.concrete_fields]
    org_columns = [f.column for f in Organisation._meta.concrete_fields]
    granted = "%s" if user.is_superuser else _GRANTED

    def grant_params(perm_id: int) -> list:
        if user.is_superuser:
            return [True]
        return [user.pk, perms["content_type"], perm_id, perms["content_type"], perm_id, user.pk]

    # Table and column names come from the models, every value is a bound parameter.
    sql = (
        "SELECT "  # noqa: S608  # nosec B608 - names from models, values bound
        + ", ".join([f"a.{c}" for c in account_columns] + [f"o.{c}" for c in org_columns])
        + f", m.role IN (%s, %s) OR (m.role = %s AND {granted})"
        f" FROM {BrokerAccount._meta.db_table} a"
        f" JOIN {Organisation._meta.db_table} o ON o.id = a.organisation_id"
        f" JOIN {Membership._meta.db_table} m ON m.organisation_id = a.organisation_id AND m.user_id = %s"
        f" WHERE m.role IN (%s, %s) OR (m.role IN (%s, %s) AND {granted})"
        " ORDER BY a.id"
    )
    params = [Role.OWNER, Role.ADMIN, Role.TRADER, *grant_params(perms["trade"]), user.pk]
    params += [Role.OWNER, Role.ADMIN, Role.TRADER, Role.VIEWER, *grant_params(perms["view"])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n, k = len(account_columns), len(org_columns)
    account_names = [f.attname for f in BrokerAccount._meta.concrete_fields]
    org_names = [f.attname for f in Organisation._meta.concrete_fields]
    accesses = []
    for row in rows:
        account = BrokerAccount.from_db(connection.alias, account_names, row[:n])
        account.organisation = Organisation.from_db(connection.alias, org_names, row[n : n + k])
        accesses.append(AccountAccess(account, bool(row[-1])))
    return accesses


# A per-account grant: guardian's object permission held by the user, or by one of their groups.
# Table names come from the models; every value is a bound parameter.
_USER_PERMS = UserObjectPermission._meta.db_table
_GROUP_PERMS = GroupObjectPermission._meta.db_table
_USER_GROUPS = User.groups.through._meta.db_table


def _granted(*, user: str, object_pk: str) -> str:
    """The SQL test of a grant held by ``user`` (or one of their groups) on the object ``object_pk``,
    each a column expression or ``%s``. Its placeholders, in order: ``user``, content type,
    permission, ``object_pk`` (the user's own grant), then content type, permission, ``object_pk``,
    ``user`` (a group's)."""
    return (
        f"(EXISTS (SELECT 1 FROM {_USER_PERMS} p WHERE p.user_id = {user} AND p.content_type_id = %s"  # noqa: S608  # nosec B608 - names from models, values bound
        f" AND p.permission_id = %s AND p.object_pk = {object_pk})"
        f" OR EXISTS (SELECT 1 FROM {_GROUP_PERMS} g JOIN {_USER_GROUPS} ug ON ug.group_id = g.group_id"
        f" WHERE g.content_type_id = %s AND g.permission_id = %s AND g.object_pk = {object_pk}"
        f" AND ug.user_id = {user}))"
    )


# The requesting user's grant on the account row ``a``: params user, ct, perm, ct, perm, user.
_GRANTED = _granted(user="%s", object_pk="CAST(a.id AS TEXT)")
_permission_ids: dict[str, int] = {}

# Who may view an account: its organisation's Owners and Admins, and its Traders and Viewers who hold
# the view grant (their own or a group's; a superuser holds every grant). Names from the models.
_VIEWERS = (
    f"SELECT m.user_id FROM {Membership._meta.db_table} m"  # noqa: S608  # nosec B608 - model names, values bound
    f" JOIN {User._meta.db_table} u ON u.id = m.user_id"
    " WHERE m.organisation_id = %s AND (m.role IN (%s, %s) OR (m.role IN (%s, %s) AND (u.is_superuser"
    f" OR {_granted(user='m.user_id', object_pk='%s')})))"
)


def account_viewer_ids(*, account) -> set[int]:
    """Return the ids of the users ``account_get_for_user(access="view")`` lets reach ``account``, in
    one statement (it runs for the live updates of every order)."""
    perms = _grant_permission_ids()
    grant = [perms["content_type"], perms["view"], str(account.pk)]
    params = [account.organisation_id, Role.OWNER, Role.ADMIN, Role.TRADER, Role.VIEWER, *grant, *grant]
    with connection.cursor() as cursor:
        cursor.execute(_VIEWERS, params)
        return {user_id for (user_id,) in cursor.fetchall()}


def forget_permission_ids() -> None:
    """Drop the cached permission ids (after a migrate or a flush, which may give them new ids)."""
    _permission_ids.clear()


def _grant_permission_ids() -> dict[str, int]:
    """The ids of the broker account's content type and its view and trade permissions (fixed once migrated)."""
    if not _permission_ids:
        content_type = ContentType.objects.get_for_model(BrokerAccount)
        ids = dict(
            Permission.objects.filter(
                content_type=content_type, codename__in=["view_brokeraccount", "trade_brokeraccount"]
            ).values_list("codename", "id")
        )
        _permission_ids.update(
            content_type=content_type.pk, view=ids["view_brokeraccount"], trade=ids["trade_brokeraccount"]
        )
    return _permission_ids


@dataclass(frozen=True, slots=True)
class OrganisationAccount:
    """One row of an organisation's broker accounts page."""

    account: BrokerAccount
    has_login: bool  # the family signs in daily at the broker (Connect)
    session: SessionState | None  # None for a family without a login, or a broker no longer registered
    # False when the stored credentials do not open (a retired or unknown key, a tampered row): the
    # page asks for them again instead of failing.
    credentials_readable: bool = True


def organisation_account_list(*, organisation: Organisation) -> list[OrganisationAccount]:
    """Return the organisation's accounts by label, each with its session at the broker where its
    family has a daily login. For the organisation's Owners and Admins, after
    ``accounts.selectors.organisation_get_for_user(manage=True)``."""
    rows = []
    for account in BrokerAccount.objects.filter(organisation=organisation).order_by("label", "pk"):
        try:
            has_login = family(account.broker).login is not None
        except UnknownBroker:
            has_login = False
        session = session_state(account) if has_login else None
        rows.append(OrganisationAccount(account, has_login, session, _credentials_readable(account)))
    return rows


def _credentials_readable(account: BrokerAccount) -> bool:
    try:
        broker_credentials_get(account=account)
    except SecretError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class AccountSession:
    """One account's session at its broker, as every page's header shows it: whether it is live (and
    until when) or lapsed (and why), and whether the user may sign it in again (trade access)."""

    account_id: int
    label: str
    broker: str
    live: bool
    expires_at: datetime | None
    ended_reason: str
    can_trade: bool


def login_broker_codes() -> list[str]:
    """The registered broker families with a daily login (their accounts have a session to show)."""
    codes = []
    for code in registered_codes():
        try:
            if family(code).login is not None:
                codes.append(code)
        except UnknownBroker:
            continue
    return sorted(codes)


def account_session_list_for_user(*, user, now: datetime | None = None) -> list[AccountSession]:
    """Return the session of every active account ``user`` may view whose broker family has a daily
    login, by label: the same reach as ``account_list_for_user(access="view")``, in one SQL statement
    (it runs for every page). Empty, with no query, for an anonymous user or when no family has a login."""
    codes = login_broker_codes()
    if not user.is_authenticated or not codes:
        return []
    now = now or timezone.now()
    perms = _grant_permission_ids()
    granted = "%s" if user.is_superuser else _GRANTED

    def grant_params(perm_id: int) -> list:
        if user.is_superuser:
            return [True]
        return [user.pk, perms["content_type"], perm_id, perms["content_type"], perm_id, user.pk]

    in_codes = ", ".join(["%s"] * len(codes))
    sql = (
        "SELECT a.id, a.label, a.broker, s.state, s.expires_at, s.ended_reason,"  # noqa: S608  # nosec B608 - names from models, values bound
        f" m.role IN (%s, %s) OR (m.role = %s AND {granted})"
        f" FROM {BrokerAccount._meta.db_table} a"
        f" JOIN {Membership._meta.db_table} m ON m.organisation_id = a.organisation_id AND m.user_id = %s"
        f" LEFT JOIN {BrokerSession._meta.db_table} s ON s.account_id = a.id"
        f" WHERE a.is_active AND a.broker IN ({in_codes})"
        f" AND (m.role IN (%s, %s) OR (m.role IN (%s, %s) AND {granted}))"
        " ORDER BY a.label, a.id"
    )
    params = [
        Role.OWNER,
        Role.ADMIN,
        Role.TRADER,
        *grant_params(perms["trade"]),
        user.pk,
        *codes,
        Role.OWNER,
        Role.ADMIN,
        Role.TRADER,
        Role.VIEWER,
        *grant_params(perms["view"]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    sessions = []
    for account_id, label, broker, state, expires_at, ended_reason, can_trade in rows:
        if expires_at is not None and timezone.is_naive(expires_at):  # SQLite hands back naive UTC
            expires_at = timezone.make_aware(expires_at, UTC)
        if state is None:
            live, reason = False, "never signed in"
        elif state != BrokerSession.State.LIVE:
            live, reason = False, ended_reason or ""
        elif expires_at <= now:
            live, reason = False, "expired at the broker's cut-off"
        else:
            live, reason = True, ""
        sessions.append(AccountSession(account_id, label, broker, live, expires_at, reason, bool(can_trade)))
    return sessions
