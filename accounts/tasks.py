"""Periodic work of the accounts domain (queue: default)."""

from __future__ import annotations

from celery import shared_task

from accounts.failures import failures_flush


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50, ignore_result=True)
def auth_failures_flush() -> int:
    """Audit each ended window of failed credentials as one auth.denied_repeated event.

    Idempotent: a window is taken (deleted from the counters) as its event is written, and put back
    if the write fails. Returns how many windows were written.
    """
    return failures_flush()
