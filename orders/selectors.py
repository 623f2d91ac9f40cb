"""Order reads: each takes an account already authorised through brokers.selectors.account_get_for_user."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from marketdata.quotes import get_quotes
from orders.models import Funds, Order, Position, Product, Trade


def order_list(*, account, status: list[str] | None = None) -> QuerySet[Order]:
    orders = Order.objects.filter(account=account).select_related("instrument")
    return orders.filter(status__in=status) if status else orders


def trade_list(*, account) -> QuerySet[Trade]:
    return Trade.objects.filter(account=account).select_related("instrument", "order")


def position_list(*, account) -> list[dict]:
    """Return positions with live MTM from the last quotes (dicts ready for the schema or template)."""
    positions = list(Position.objects.filter(account=account).select_related("instrument").order_by("pk"))
    quotes = get_quotes([p.instrument_id for p in positions])
    rows = []
    for p in positions:
        ltp = quotes[p.instrument_id].ltp if p.instrument_id in quotes else None
        rows.append(
            {
                "id": p.pk,
                "instrument_id": p.instrument_id,
                "product": p.product,
                "net_quantity": p.net_quantity,
                "average_price": p.average_price,
                "realised_pnl": p.realised_pnl,
                "unrealised_pnl": p.unrealised_pnl(ltp),
                "ltp": ltp,
                "buy_quantity": p.buy_quantity,
                "sell_quantity": p.sell_quantity,
                "margin_blocked": p.margin_blocked,
                "position": p,
            }
        )
    return rows


def holding_list(*, account) -> list[dict]:
    """Return delivery (CNC) holdings; the paper exchange settles delivery at once."""
    return [
        {"instrument_id": p.instrument_id, "quantity": p.net_quantity, "average_price": p.average_price}
        for p in Position.objects.filter(account=account, product=Product.CNC, net_quantity__gt=0).order_by("pk")
    ]


def funds_get(*, account) -> dict:
    funds = Funds.objects.filter(account=account).first()
    if funds is None:
        zero = Decimal(0)
        return {
            "account_id": account.pk,
            "opening_balance": zero,
            "realised_pnl": zero,
            "realised_today": zero,
            "margin_blocked": zero,
            "available": zero,
        }
    return {
        "account_id": account.pk,
        "opening_balance": funds.opening_balance,
        "realised_pnl": funds.realised_pnl,
        "realised_today": funds.realised_today,
        "margin_blocked": funds.margin_blocked,
        "available": funds.available,
    }
