"""The brokers' background work: draining the durable queue of broker order updates."""

from __future__ import annotations

from celery import shared_task

from brokers.services.inbox import inbox_drain


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def drain_update_inbox() -> int:
    """Apply the broker updates received and not yet applied, in the order received (queued after
    each receipt, and every 5 s by beat as a sweep)."""
    return inbox_drain()
