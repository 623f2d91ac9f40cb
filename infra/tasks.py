from __future__ import annotations

import logging
import time

from celery import shared_task
from django.core.cache import cache

logger = logging.getLogger(__name__)

BEAT_HEARTBEAT_KEY = "health:beat-heartbeat"


@shared_task(ignore_result=True, time_limit=10, soft_time_limit=5)
def beat_heartbeat() -> None:
    """Record that beat is alive and that a worker picked the task up."""
    cache.set(BEAT_HEARTBEAT_KEY, time.time(), timeout=None)


ROTATION_LOCK_KEY = "keys:rotation-running"


@shared_task(ignore_result=True, acks_late=True, time_limit=3600, soft_time_limit=3300)
def rotate_keys() -> None:
    """Move every sealed field onto the current key (infra.key_rotation.keys_rotate); one run at a
    time across workers. Idempotent: a run stopped anywhere is finished by the next."""
    from django.conf import settings

    from infra.key_rotation import key_event, keys_rotate

    if not cache.add(ROTATION_LOCK_KEY, time.time(), timeout=3600):
        return
    try:
        done: dict[str, int] = {}
        for step in keys_rotate(batch_size=settings.KEY_ROTATION_BATCH_SIZE):
            done[step.label] = done.get(step.label, 0) + step.count
        if any(done.values()):
            logger.info("key rotation: %s", ", ".join(f"{n} {label}" for label, n in done.items()))
            key_event("keys.rotated", {label: n for label, n in done.items() if n})
    finally:
        cache.delete(ROTATION_LOCK_KEY)
