"""What the platform knows of the Celery queues, without importing the project's Celery app.

The queues themselves are declared by the project configuration (``config.celery``); health and
metrics read them from the current Celery app. A publish hook stamps each message with its enqueue
time so that health can report the age of the oldest waiting task and metrics the queue wait.
"""

from __future__ import annotations

import time

from celery import current_app
from celery.signals import before_task_publish

PUBLISHED_AT_HEADER = "x-published-at"


def queue_names() -> tuple[str, ...]:
    """Return the names of the queues the project's Celery app declares."""
    return tuple(queue.name for queue in current_app.conf.task_queues or ())


def broker_url() -> str:
    """Return the Celery app's broker URL ("" when none is set)."""
    return current_app.conf.broker_url or ""


@before_task_publish.connect
def _stamp_publish_time(headers: dict | None = None, **_: object) -> None:
    """Record when a task entered its queue, so health can report the age of the oldest waiting task."""
    if headers is not None:
        headers[PUBLISHED_AT_HEADER] = time.time()
