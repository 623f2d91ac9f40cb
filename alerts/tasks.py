"""Alert tasks (queue "default"): deliver one outbox notification, place one firing's trigger order,
and the sweep that queues again what a lost task left pending. Each takes an id, re-reads, calls one
service, and is safe to run twice (acknowledged late)."""

from __future__ import annotations

from celery import shared_task

from alerts.errors import DeliveryFailed
from alerts.services import alert_order_place, notification_deliver, notifications_due

BACKOFF_SECONDS = (5, 15, 60, 180, 600, 1800, 3600)


@shared_task(bind=True, acks_late=True, max_retries=len(BACKOFF_SECONDS), time_limit=60, soft_time_limit=50)
def deliver_notification(self, notification_id: int) -> str:
    """Deliver one notification once; retried with a growing backoff while its channel fails."""
    try:
        return notification_deliver(notification_id=notification_id)
    except DeliveryFailed as exc:
        delay = BACKOFF_SECONDS[min(self.request.retries, len(BACKOFF_SECONDS) - 1)]
        raise self.retry(exc=exc, countdown=delay) from exc


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def place_alert_order(firing_id: int) -> str:
    """Place one firing's alert trigger order (once: its idempotency key is the firing's)."""
    return alert_order_place(firing_id=firing_id)


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def sweep_outbox() -> int:
    """Queue again the notifications pending for over a minute (their task was lost)."""
    ids = notifications_due()
    for notification_id in ids:
        deliver_notification.delay(notification_id)
    return len(ids)
