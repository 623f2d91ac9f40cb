"""RMS reads: the limits of an organisation's scopes for its limits page, which accounts breach
their daily loss limit (reads positions, funds and quotes), and what a kill switch covers, in words
and in the orders and positions engaging it would close."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import Q

from marketdata.quotes import get_quotes
from rms.limits import limits_for, strictest
from rms.models import KillScope, KillSwitch, LimitScope, RiskLimit


def limit_choices(field: str) -> list[str]:
    """Return the codes ``allowed_exchanges`` or ``allowed_products`` may hold, in display order."""
    from marketdata.models import Exchange
    from orders.models import Product

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


def account_daily_loss(account_id: int) -> Decimal:
    """Return today's loss of the account (positive = loss): -(realised today + MTM of open positions)."""
    from orders.models import Funds, Position

    funds = Funds.objects.filter(account_id=account_id).first()
    realised = funds.realised_today if funds else Decimal(0)
    positions = list(Position.objects.filter(account_id=account_id).exclude(net_quantity=0))
    quotes = get_quotes([p.instrument_id for p in positions])
    mtm = sum(
        (p.unrealised_pnl(quotes[p.instrument_id].ltp if p.instrument_id in quotes else None) for p in positions),
        Decimal(0),
    )
    return -(realised + mtm)


def accounts_breaching_daily_loss() -> list[tuple[int, Decimal, Decimal]]:
    """Return (account id, loss, limit) for every account, not already halted, at or past its daily loss limit."""
    from brokers.models import BrokerAccount
    from orders.models import Funds, Position

    halted = {
        int(k.split(":")[1])
        for k in KillSwitch.objects.filter(active=True, scope="account").values_list("key", flat=True)
    }
    candidates = set(Position.objects.exclude(net_quantity=0).values_list("account_id", flat=True))
    candidates |= set(Funds.objects.filter(realised_today__lt=0).values_list("account_id", flat=True))
    by_org = defaultdict(list)
    for account_id, org_id in BrokerAccount.objects.filter(pk__in=candidates - halted).values_list(
        "pk", "organisation_id"
    ):
        by_org[org_id].append(account_id)
    breaching = []
    for org_id, account_ids in by_org.items():
        for account_id in account_ids:
            limit = limits_for(account_id=account_id, organisation_id=org_id, user_id=None).max_daily_loss
            if limit is None:
                continue
            loss = account_daily_loss(account_id)
            if loss >= limit:
                breaching.append((account_id, loss, limit))
    return breaching


# --- kill switch: what a switch covers, in words and in numbers -------------------------------------------
def kill_switch_organisation_ids(*, scope: str, target_id: int | None) -> set[int]:
    """Return the ids of the organisations a switch concerns: its Owners and Admins may lift it (and
    engage it). Global concerns none (a superuser's)."""
    from accounts.models import Membership
    from brokers.models import BrokerAccount

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
        user = User.objects.filter(pk=target_id).first()
        return f"trading by {user.get_full_name() or user.username}" if user else "trading by a removed user"
    if scope == KillScope.ORGANISATION:
        name = Organisation.objects.filter(pk=target_id).values_list("name", flat=True).first()
        return f"Organisation {name or 'removed'}"
    account = BrokerAccount.objects.filter(pk=target_id).only("label", "client_code").first()
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


def kill_switch_impact(*, scope: str, target_id: int | None) -> dict:
    """Return what engaging a switch now would do (orders.services.kill_switch_engage):
    ``{"open_orders": n, "positions": n}``, the orders it would cancel (pending or working, as
    ``cancel_all`` does) and the open positions it would square off at market. A user's switch
    cancels that user's orders on every account and squares off nothing: positions belong to accounts.
    Two counting queries."""
    from orders.models import Order, Position, Status
    from orders.states import WORKING

    orders = Order.objects.filter(status__in=[Status.PENDING, *WORKING])
    positions = Position.objects.exclude(net_quantity=0)
    if scope == KillScope.USER:
        return {"open_orders": orders.filter(placed_by_id=target_id).count(), "positions": 0}
    if scope == KillScope.ORGANISATION:
        orders = orders.filter(account__organisation_id=target_id)
        positions = positions.filter(account__organisation_id=target_id)
    elif scope == KillScope.ACCOUNT:
        orders = orders.filter(account_id=target_id)
        positions = positions.filter(account_id=target_id)
    return {"open_orders": orders.count(), "positions": positions.count()}
