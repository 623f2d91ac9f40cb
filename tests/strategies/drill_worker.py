"""A real Celery worker (or a sender) for the kill -9 drill, on its own queue and Redis key prefix so it
never meets another run's tasks, with redelivery after 2 s instead of an hour.

``python -m tests.strategies.drill_worker worker`` runs a worker of the project's Celery app;
``python -m tests.strategies.drill_worker send <deployment id> <bar ts>`` sends one evaluation. With
``DRILL_PAUSE_DIR`` set, the worker stops after a deployment's intents are placed, before the task
returns (and is acknowledged): it writes ``placed`` there and waits for ``release``, the pause point at
which the drill kills it. Settings come from the environment: ``DRILL_QUEUE``, ``DRILL_PREFIX``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from config.celery import app  # noqa: E402
from strategies import runtime, tasks  # noqa: E402
from tests.strategies import runtime_world  # noqa: E402, F401  (registers the test strategies)

QUEUE = os.environ["DRILL_QUEUE"]
app.conf.broker_transport_options = {
    "visibility_timeout": 2,  # an unacknowledged task is redelivered 2 s after it was taken
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
    "global_keyprefix": os.environ["DRILL_PREFIX"],
}


def _pause_after_placing(pause_dir: Path) -> None:
    place = runtime._apply

    def placed_then_wait(deployment, intents, source="strategy"):
        applied = place(deployment, intents, source)
        (pause_dir / "placed").write_text(str(len(applied)))
        while not (pause_dir / "release").exists():
            time.sleep(0.05)
        return applied

    runtime._apply = placed_then_wait


if __name__ == "__main__":
    if sys.argv[1] == "send":
        tasks.evaluate_deployment.apply_async((int(sys.argv[2]), sys.argv[3]), queue=QUEUE)
    else:
        if os.environ.get("DRILL_PAUSE_DIR"):
            _pause_after_placing(Path(os.environ["DRILL_PAUSE_DIR"]))
        options = ["--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
        app.worker_main(["worker", "--pool", "threads", "--concurrency", "1", "--queues", QUEUE, *options])
