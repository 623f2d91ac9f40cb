"""A fixture for tests whose acts queue tasks (the update queue's drain, reconciliations): the tasks
are recorded, not sent to the task broker, where no worker runs them during the tests and a backlog
left in the full stack's queues would fail the health check of later tests. The tests drain and
reconcile themselves. Import ``tasks_recorded_not_sent`` into a conftest (it is autouse)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def tasks_recorded_not_sent(monkeypatch) -> list[tuple]:
    sent: list[tuple] = []

    class _App:
        def send_task(self, name, args=None, kwargs=None, **options):
            sent.append((name, tuple(args or ()), options))

    monkeypatch.setattr("orders.services.broker_failures.current_app", _App())
    monkeypatch.setattr("brokers.services.inbox._queue_drain", lambda: sent.append(("drain", (), {})))
    monkeypatch.setattr("kite.master_refresh.current_app", _App())
    return sent
