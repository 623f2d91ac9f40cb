"""What the OMS does when a broker call fails: the order is settled (REJECTED when the broker refused,
UNKNOWN when its answer never came, margin released either way, audited), and an unanswered call
queues the order's reconciliation (``reconciliation.reconcile_order``).
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

from audit.services import audit_record
from brokers.adapters.registry import adapter_for
from orders import metrics, push
from orders.locks import lock_accounts, lock_orders
from orders.margin import refresh_margin
from orders.models import Order
from orders.services.events import record_event
from orders.states import can_move

logger = logging.getLogger(__name__)


def settle(order: Order, status: str, *, message: str, action: str, reason: str) -> None:
    """Move an order whose broker call failed to REJECTED or UNKNOWN, release margin, audit."""
    with transaction.atomic():
        funds = lock_accounts([order.account_id])[order.account_id]
        current = lock_orders([order.pk])[order.pk]
        if not can_move(current.status, status):
            return
        before = current.status
        current.status = status
        current.message = message[:300]
        current.save(update_fields=["status", "message", "updated_at"])
        record_event(current, "broker_error", before=before, message=message, reason=reason)
        refresh_margin(
            adapter=adapter_for(current.account),
            funds=funds,
            instrument=current.instrument,
            product=current.product,
        )
        audit_record(
            actor="system:orders",
            action=action,
            target=current,
            payload={"client_order_id": current.client_order_id, "reason": reason, "message": message},
        )
        push.order_changed_on_commit(current)
    metrics.order_status_total.labels(status=status).inc()


def schedule_reconcile(order: Order) -> None:
    """Queue the order's reconciliation once the current transaction (if any) has committed."""

    def publish() -> None:
        try:
            # By task name: orders.tasks calls these services, so the services never import the tasks.
            current_app.send_task("orders.tasks.reconcile_order_task", args=[order.pk], countdown=5)
        except Exception:  # the periodic sweep will find it; never lose the order over a queue hiccup
            logger.warning("could not queue reconciliation of order %s", order.pk, exc_info=True)

    transaction.on_commit(publish)
