"""Order tasks (queue "orders"): reconciliation of UNKNOWN orders and of an account's working orders,
the 15:15 IST intraday square-off, and kill-switch enforcement requested by RMS.

Tasks call the services; the services queue tasks by name (``broker_failures.schedule_reconcile``),
so the services never import this module.
"""

from __future__ import annotations

import logging

from celery import shared_task

from brokers.adapters.base import BrokerRateLimited, BrokerSessionExpired, BrokerUnavailable, BrokerUnreachable
from orders.selectors import orders_to_reconcile
from orders.services.kill_switch import kill_switch_engage
from orders.services.reconciliation import reconcile_account, reconcile_order
from orders.services.square_off import square_off_intraday

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=20, time_limit=60, soft_time_limit=50)
def reconcile_order_task(self, order_id: int) -> str:
    """Resolve one UNKNOWN order from the broker's order book; retried while the broker is unreachable."""
    try:
        return reconcile_order(order_id=order_id).status
    except (BrokerUnavailable, BrokerRateLimited, BrokerUnreachable, BrokerSessionExpired) as exc:
        # The book could not be read (yet): try again; the minute's sweep takes over after the retries.
        raise self.retry(exc=exc, countdown=min(60, 5 * (self.request.retries + 1))) from exc


@shared_task(bind=True, acks_late=True, max_retries=10, time_limit=120, soft_time_limit=100)
def reconcile_account_task(self, account_id: int) -> dict[str, int]:
    """Reconcile every working order of one account from its broker's order book. Sent by name by a
    broker plug-in whose order stream was interrupted (the Kite ticker, after a reconnect); retried
    while the broker is unreachable (reconciling an order again changes nothing)."""
    try:
        return reconcile_account(account_id=account_id)
    except (BrokerUnavailable, BrokerRateLimited, BrokerUnreachable, BrokerSessionExpired) as exc:
        raise self.retry(exc=exc, countdown=min(60, 5 * (self.request.retries + 1))) from exc


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def reconcile_unknown_orders() -> int:
    """Sweep: queue reconciliation for every order still UNKNOWN, or working with a modify or cancel
    the broker never answered and not reconciled since (beat, every minute)."""
    ids = list(orders_to_reconcile().values_list("pk", flat=True))
    for order_id in ids:
        reconcile_order_task.delay(order_id)
    return len(ids)


@shared_task(acks_late=True, time_limit=600, soft_time_limit=570)
def square_off_intraday_task() -> dict:
    """Cancel working MIS orders and close MIS positions (beat, 15:15 IST). Idempotent: a second run finds nothing."""
    return square_off_intraday()


@shared_task(acks_late=True, time_limit=300, soft_time_limit=270)
def kill_switch_engage_task(scope: str, target_id: int | None, reason: str) -> dict:
    """Engage a kill switch on behalf of the system (the RMS MTM monitor) and enforce it."""
    return kill_switch_engage(actor=None, scope=scope, target_id=target_id, reason=reason)
