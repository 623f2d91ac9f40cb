"""The order side of a kill switch: RMS decides (``rms.services.kill_switch_set``), the OMS acts. The
switch is set while every affected account is locked, then their open orders are cancelled and
their positions squared off."""

from __future__ import annotations

from django.db import transaction

from orders.locks import lock_accounts
from orders.models import Order
from orders.services.amendments import cancel_all
from orders.services.square_off import square_off_all
from orders.states import LIVE
from rms.services import kill_switch_set


def kill_switch_engage(*, actor, scope: str, target_id: int | None, reason: str, ip: str | None = None) -> dict:
    """Engage a kill switch, then cancel open orders and square off positions in its scope.

    The switch is set while every affected account is locked, so an order either committed before (and
    is cancelled here) or is checked after (and rejected). Returns counts of what was done. Raises
    KillSwitchForbidden when ``actor`` may not engage it.
    """
    accounts = _accounts_in_scope(scope, target_id)
    with transaction.atomic():
        lock_accounts([a.pk for a in accounts])
        switch = kill_switch_set(actor=actor, scope=scope, target_id=target_id, reason=reason, ip=ip)
    # A user's switch stops that user's orders; positions belong to accounts and stay with their owners.
    user_id = target_id if scope == "user" else None
    return {"kill_switch": switch.key, **enforce_kill_switch(accounts=accounts, actor=actor, ip=ip, user_id=user_id)}


def _accounts_in_scope(scope: str, target_id: int | None) -> list:
    from brokers.models import BrokerAccount
    from rms.models import KillScope

    accounts = BrokerAccount.objects.all()
    # An organisation or account switch without a target covers no account.
    if scope == KillScope.ORGANISATION:
        accounts = accounts.filter(organisation_id=target_id) if target_id is not None else accounts.none()
    elif scope == KillScope.ACCOUNT:
        accounts = accounts.filter(pk=target_id) if target_id is not None else accounts.none()
    elif scope == KillScope.USER:
        # the accounts on which this user has live orders
        account_ids = set(
            Order.objects.filter(placed_by_id=target_id, status__in=LIVE).values_list("account_id", flat=True)
        )
        accounts = accounts.filter(pk__in=account_ids)
    return list(accounts.order_by("pk"))


def enforce_kill_switch(*, accounts: list, actor, ip: str | None = None, user_id: int | None = None) -> dict:
    """Cancel every live order and square off every position of ``accounts`` (for a user's switch:
    only cancel that user's orders); return counts."""
    cancelled = squared = 0
    for account in accounts:
        cancelled += len(cancel_all(actor=actor, account=account, ip=ip, placed_by_id=user_id))
        if user_id is None:
            squared += len(square_off_all(actor=actor, account=account, ip=ip))
    return {"cancelled": cancelled, "squared_off": squared}
