"""The OMS's row locks, all taken here: an account's ``Funds`` row is the account's lock.

Every write to an account's trades, positions or margin, and every status change of its orders except
a PENDING order's send (``placement._send``: conditional updates from PENDING, which move no margin),
first locks the account's Funds row; several accounts are locked in primary-key order, so two
transactions can never wait for each other in a cycle. The orders a write changes are locked after
their account: in primary-key order (``lock_orders``), or, for a broker update, the one order it
names, by its broker tag (``lock_order_by_tag``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from infra import prepared
from orders.models import Funds, Order

# The common case, one account (every order placed), compiled once.
_LOCK_ONE = prepared.Prepared(lambda p: Funds.objects.select_for_update().filter(account_id=p.account), account=int)


def today_ist() -> date:
    return timezone.localdate()  # TIME_ZONE is Asia/Kolkata: the trading day


def lock_accounts(account_ids: list[int], opening_balance: Callable[[int], Decimal] | None = None) -> dict[int, Funds]:
    """Lock the Funds rows of the accounts (in key order) for the rest of the transaction; return them.

    An account without its row gets one, opening at ``opening_balance(account_id)`` (the broker's
    cash, asked only then) or at zero. A new IST day resets ``realised_today``. Must run inside
    ``transaction.atomic``.
    """
    assert transaction.get_connection().in_atomic_block, "lock_accounts needs a transaction"
    wanted = sorted(set(account_ids))

    def lock() -> dict[int, Funds]:
        if len(wanted) == 1:
            rows = _LOCK_ONE.all(account=wanted[0])
        else:
            rows = Funds.objects.select_for_update().filter(account_id__in=wanted).order_by("account_id")
        return {f.account_id: f for f in rows}

    rows = lock()
    if len(rows) < len(wanted):
        # place_order opens the ledger at the broker's cash. An account whose orders arrived without
        # passing place_order (imported, or a broker update for an order placed elsewhere) opens at
        # zero rather than fail.
        for account_id in wanted:
            if account_id not in rows:
                balance = opening_balance(account_id) if opening_balance is not None else Decimal(0)
                Funds.objects.get_or_create(account_id=account_id, defaults={"opening_balance": balance})
        rows = lock()
    today = today_ist()
    for funds in rows.values():
        if funds.trading_day != today:
            funds.trading_day = today
            funds.realised_today = Decimal(0)
            prepared.update(funds, ["trading_day", "realised_today", "updated_at"])
    return rows


def lock_orders(order_ids: list[int]) -> dict[int, Order]:
    """Lock orders (after their accounts) in key order; return them by id."""
    orders = Order.objects.select_for_update().filter(pk__in=sorted(set(order_ids))).order_by("pk")
    return {o.pk: o for o in orders}


def lock_order_by_tag(account_id: int, tag: str) -> Order | None:
    """Lock the account's order whose broker tag is ``tag`` (after the account); return it with its
    instrument and account, or None. Only the order's row is locked, not the rows its joins read."""
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("instrument", "account")
        .filter(account_id=account_id, broker_tag=tag)
        .first()
    )
