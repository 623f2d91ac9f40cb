"""Loaded into a drill's real Celery worker with ``celery --app config worker --include tests.drills.worker_hooks``.

- ``DRILL_VISIBILITY_TIMEOUT`` (seconds): how long a task taken and never acknowledged (its worker was
  killed) waits in Redis before it is delivered again; the project's 3600 s would outlast any drill.
  The unacknowledged messages are scanned for every second instead of every 100 s.
- ``DRILL_PAUSE_DIR``: the first drain of the broker-update inbox in this worker (any of its pool
  processes) stops after the update stream has applied its first batch and before the batch's rows
  are marked applied: the moment ``brokers.services.inbox`` names as the worst for a kill. It writes
  ``paused`` there (JSON: the process, the Celery task id, the batch's row ids) and waits for a
  ``release`` file that a drill which kills the worker never writes. With ``DRILL_PAUSE_BACKLOG`` (a
  number of rows), that drain first waits, holding the drain lock as a slow drain would, until so
  many updates are pending, so the batch it applies before the pause is a sizeable one.
Nothing else of the worker changes.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import django

django.setup()

from celery import current_app, current_task  # noqa: E402

from brokers.adapters import updates as update_stream  # noqa: E402
from brokers.models import InboundUpdate  # noqa: E402
from brokers.services import inbox  # noqa: E402

if os.environ.get("DRILL_VISIBILITY_TIMEOUT"):
    current_app.conf.broker_transport_options = {
        **(current_app.conf.broker_transport_options or {}),
        "visibility_timeout": int(os.environ["DRILL_VISIBILITY_TIMEOUT"]),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }


class _PausingStream:
    """``inbox``'s view of the update stream: the real ``emit``, then the pause (once per worker)."""

    def __init__(self, pause_dir: Path) -> None:
        self.pause_dir = pause_dir

    def __getattr__(self, name: str):
        return getattr(update_stream, name)

    def emit(self, updates) -> None:
        # The rows the drain read, as it read them: the oldest unapplied, in order (one drain at a time).
        pending = InboundUpdate.objects.filter(applied_at__isnull=True).order_by("id")
        ids = list(pending.values_list("pk", flat=True)[: len(updates)])
        update_stream.emit(updates)
        if not _claim(self.pause_dir / "claimed"):
            return  # another process of this worker paused already
        task_id = current_task.request.id if current_task else None
        detail = {"pid": os.getpid(), "task_id": task_id, "row_ids": ids, "updates": len(updates)}
        (self.pause_dir / "paused.tmp").write_text(json.dumps(detail))
        (self.pause_dir / "paused.tmp").rename(self.pause_dir / "paused")
        while not (self.pause_dir / "release").exists():
            time.sleep(0.05)


def _claim(path: Path) -> bool:
    """Whether this process is the first of the worker to claim ``path`` (created once)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _waiting_for_backlog(one_drain, pause_dir: Path, backlog: int):
    @contextmanager
    def one_drain_after_backlog():
        with one_drain() as mine:
            if mine and _claim(pause_dir / "backlog"):
                deadline = time.monotonic() + 60
                while inbox.inbox_pending() < backlog and time.monotonic() < deadline:
                    time.sleep(0.1)
            yield mine

    return one_drain_after_backlog


if os.environ.get("DRILL_PAUSE_DIR"):
    _pause_dir = Path(os.environ["DRILL_PAUSE_DIR"])
    inbox.update_stream = _PausingStream(_pause_dir)  # type: ignore[assignment]
    if os.environ.get("DRILL_PAUSE_BACKLOG"):
        inbox._one_drain = _waiting_for_backlog(inbox._one_drain, _pause_dir, int(os.environ["DRILL_PAUSE_BACKLOG"]))
