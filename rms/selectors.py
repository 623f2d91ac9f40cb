"""RMS reads: which accounts breach their daily loss limit (reads positions, funds and quotes)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from marketdata.quotes import get_quotes
from rms.limits import limits_for
from rms.models import KillSwitch


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
