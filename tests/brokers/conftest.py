"""The trading world fixtures, for the tests of broker sessions that place orders."""

import pytest

from tests.trading_world import _fresh_trading_state, world  # noqa: F401


@pytest.fixture(autouse=True)
def _tasks_recorded_not_sent(monkeypatch):
    """Tasks these tests queue are recorded, not sent to the task broker (no worker runs them here,
    and a backlog left in the full stack's queues would fail the health check of later tests)."""
    sent: list[tuple] = []

    class _App:
        def send_task(self, name, args=None, kwargs=None, **options):
            sent.append((name, tuple(args or ()), options))

    monkeypatch.setattr("orders.services.broker_failures.current_app", _App())
    monkeypatch.setattr("brokers.services.inbox._queue_drain", lambda: sent.append(("drain", (), {})))
    return sent
