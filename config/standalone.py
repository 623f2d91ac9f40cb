"""Celery in the web process, for standalone mode.

With no Redis the broker is kombu's in-memory transport, which only reaches consumers in the same
process; so the worker and beat run as threads beside the ASGI server. The in-memory channel layer
has the same reach, which is why producers that push to websockets (tasks, the feed) must share the
process too.
"""

from __future__ import annotations

import logging
import threading

from celery.beat import EmbeddedService

from config.celery import QUEUES
from config.celery import app as celery_app
from infra.health import expect_beat

logger = logging.getLogger(__name__)


def start_celery_in_process(*, schedule_path: str, concurrency: int = 2) -> tuple[object, EmbeddedService]:
    """Start a worker thread consuming every queue and a beat thread; return (worker, beat)."""
    worker = celery_app.WorkController(
        pool="threads",
        concurrency=concurrency,
        queues=list(QUEUES),
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="INFO",
    )
    threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()
    beat = EmbeddedService(celery_app, thread=True, schedule_filename=schedule_path)
    beat.start()
    expect_beat()  # from now on /api/health fails when beat's heartbeat goes stale
    logger.info("celery worker and beat started in-process", extra={"queues": list(QUEUES)})
    return worker, beat
