"""RMS reads: the limits of an organisation's scopes for its limits page, and which accounts breach
their daily loss limit (reads positions, funds and quotes)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import Q

from marketdata.quotes import get_quotes
from rms.limits import limits_for, strictest
from rms.models import KillSwitch, LimitScope, RiskLimit


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
