"""RMS reads: the limits of an organisation's scopes for its limits page, which accounts breach
their daily loss limit (on the losses the OMS reports, ``register_daily_losses``), and what a kill
switch covers, in words (the orders and positions engaging it would close are the OMS's to count:
``orders.selectors.kill_switch_impact``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.db.models import Q

from rms.limits import limits_for, strictest
from rms.models import KillScope, KillSwitch, LimitScope, RiskLimit


def limit_choices(field: str) -> list[str]:
    """Return the codes ``allowed_exchanges`` or ``allowed_products`` may hold, in display order."""
    from marketdata.models import Exchange, Product

    return list(Exchange.values if field == "allowed_exchanges" else Product.values)


def limit_values(rows) -> dict:
    """Return what ``rows`` (RiskLimit rows of one scope) set, field by field, the strictest winning:
    a whole number or Decimal, a list of allowed codes in display order, or None (no limit)."""
    values = strictest(rows)
    for field in ("allowed_exchanges", "allowed_products"):
        if values[field] is not None:
            values[field] = [code for code in limit_choices(field) if code in values[field]]
    return values


def _scope(scope: str, target_id: int | None, label: str, detail: str, rows) -> dict:
    return {
        "scope": scope,
        "target_id": target_id,
        "form_id": f"limits-{scope}" + (f"-{target_id}" if target_id is not None else ""),
        "label": label,
        "detail": detail,
        "values": limit_values(rows),
    }


def risk_limit_scopes(*, organisation) -> dict:
    """Return the scopes of ``organisation``'s limits page with what each sets (``limit_values``):
    ``{"organisation": scope, "accounts": [scope, ...], "members": [scope, ...], "everyone": values}``,
    each scope ``{"scope", "target_id", "form_id", "label", "detail", "values"}``; ``everyone`` holds the
    global limits, which apply on top. Four queries whatever the size of the organisation."""
    from accounts.models import Membership
    from brokers.models import BrokerAccount

    rows = list(RiskLimit.objects.filter(Q(organisation=organisation) | Q(account__organisation=organisation)))
    everyone = RiskLimit.objects.filter(organisation__isnull=True, account__isnull=True, user__isnull=True, strategy="")
    accounts = BrokerAccount.objects.filter(organisation=organisation).order_by("label", "pk")
    members = Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username")
    return {
        "organisation": _scope(
            LimitScope.ORGANISATION,
            None,
            organisation.name,
            "every order on the organisation's broker accounts",
            [r for r in rows if r.organisation_id and not r.user_id],
        ),
        "accounts": [
            _scope(
                LimitScope.ACCOUNT,
                a.pk,
                a.label,
                f"every order on {a.broker}:{a.client_code}",
                [r for r in rows if r.account_id == a.pk],
            )
            for a in accounts
        ],
        "members": [
            _scope(
                LimitScope.USER,
                m.user_id,
                m.user.get_full_name() or m.user.username,
                f"{m.user.username}, {m.get_role_display()}: their own orders on the organisation's accounts",
                [r for r in rows if r.user_id == m.user_id],
            )
            for m in members
        ],
        "everyone": limit_values(list(everyone)),
    }


def risk_limit_scope_find(scopes: dict, *, scope: str, target_id: int | None) -> dict | None:
    """Return the entry of ``risk_limit_scopes`` for one scope, or None."""
    entries = [scopes["organisation"], *scopes["accounts"], *scopes["members"]]
    return next((e for e in entries if e["scope"] == scope and e["target_id"] == target_id), None)


# Each account's loss today is the OMS's to compute (positions, funds, quotes): OrdersConfig.ready
# registers the reader, so RMS decides on the numbers without importing orders.
DailyLosses = Callable[[], dict[int, Decimal]]
_daily_losses: DailyLosses | None = None


def register_daily_losses(reader: DailyLosses) -> None:
    """Read today's losses with ``reader()``: {account id: loss (positive = loss)} for every account
    with an open position or a realised loss today."""
    global _daily_losses
    _daily_losses = reader


def accounts_breaching_daily_loss() -> list[tuple[int, Decimal, Decimal]]:
    """Return (account id, loss, limit) for every account, not already halted, at or past its daily loss limit."""
    from brokers.models import BrokerAccount

    halted = {
        int(k.split(":")[1])
        for k in KillSwitch.objects.filter(active=True, scope="account").values_list("key", flat=True)
    }
    losses = _daily_losses() if _daily_losses is not None else {}
    by_org = defaultdict(list)
    for account_id, org_id in BrokerAccount.objects.filter(pk__in=set(losses) - halted).values_list(
        "pk", "organisation_id"
    ):
        by_org[org_id].append(account_id)
    breaching = []
    for org_id, account_ids in by_org.items():
        for account_id in account_ids:
            limit = limits_for(account_id=account_id, organisation_id=org_id, user_id=None).max_daily_loss
            if limit is None:
                continue
            loss = losses[account_id]
            if loss >= limit:
                breaching.append((account_id, loss, limit))
    return breaching


# --- kill switch: what a switch covers, in words and in numbers -------------------------------------------
def kill_switch_organisation_ids(*, scope: str, target_id: int | None) -> set[int]:
    """Return the ids of the organisations a switch concerns: its Owners and Admins may lift it (and
    engage it). Global concerns none (a superuser's)."""
    from accounts.models import Membership
    from brokers.models import BrokerAccount

    if target_id is None:  # global, the one scope without a target
        return set()
    if scope == KillScope.ORGANISATION:
        return {target_id}
    if scope == KillScope.ACCOUNT:
        return set(BrokerAccount.objects.filter(pk=target_id).values_list("organisation_id", flat=True))
    if scope == KillScope.USER:
        return set(Membership.objects.filter(user_id=target_id).values_list("organisation_id", flat=True))
    return set()


def kill_switch_scope_words(*, scope: str, target_id: int | None, viewer) -> str:
    """Return what a switch covers as a trader reads it: "Account Paper (P1)", "Organisation Acme",
    "all trading on the platform", "your own trading" (``viewer``'s switch) or "trading by Tara Trader"."""
    from accounts.models import Organisation, User
    from brokers.models import BrokerAccount

    if scope == KillScope.GLOBAL:
        return "all trading on the platform"
    if scope == KillScope.USER:
        if viewer is not None and target_id == viewer.pk:
            return "your own trading"
        user = User.objects.filter(pk=target_id).first() if target_id is not None else None
        return f"trading by {user.get_full_name() or user.username}" if user else "trading by a removed user"
    if scope == KillScope.ORGANISATION:
        name = (
            Organisation.objects.filter(pk=target_id).values_list("name", flat=True).first()
            if target_id is not None
            else None
        )
        return f"Organisation {name or 'removed'}"
    account = (
        BrokerAccount.objects.filter(pk=target_id).only("label", "client_code").first()
        if target_id is not None
        else None
    )
    return f"Account {account.label} ({account.client_code})" if account else "a removed account"


def kill_switch_releasers(*, scope: str, target_id: int | None) -> str:
    """Return who may lift a switch, in words (rms.services.may_release is the rule): "an Owner or
    Admin of Acme", or "a platform superuser" for the global switch."""
    from accounts.models import Organisation

    if scope == KillScope.GLOBAL:
        return "a platform superuser"
    org_ids = kill_switch_organisation_ids(scope=scope, target_id=target_id)
    names = sorted(Organisation.objects.filter(pk__in=org_ids).values_list("name", flat=True))
    if not names:
        return "a platform superuser"
    return "an Owner or Admin of " + (" and ".join(names) if len(names) < 3 else ", ".join(names))
