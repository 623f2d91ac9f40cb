from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache

BEAT_HEARTBEAT_KEY = "health:beat-heartbeat"


@shared_task(ignore_result=True, time_limit=10, soft_time_limit=5)
def beat_heartbeat() -> None:
    """Record that beat is alive and that a worker picked the task up."""
    cache.set(BEAT_HEARTBEAT_KEY, time.time(), timeout=None)
