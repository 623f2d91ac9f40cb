"""The Celery application of config/celery.py with one task of the drills' own, for a real worker
told to stop while it runs it (tests/drills/test_graceful_shutdown.py):

    celery --app tests.drills.celery_drill worker --queues QUEUE --pool threads --concurrency 1

``drills.hold`` writes ``<marker>.started``, waits ``seconds``, then writes ``<marker>.done``. It
runs with the settings every task has (acks_late, reject_on_worker_lost, prefetch 1).
"""

from __future__ import annotations

import time
from pathlib import Path

from config.celery import app


@app.task(name="drills.hold")
def hold(marker: str, seconds: float) -> None:
    Path(f"{marker}.started").write_text(str(time.time()))
    time.sleep(seconds)
    Path(f"{marker}.done").write_text(str(time.time()))


__all__ = ["app", "hold"]
