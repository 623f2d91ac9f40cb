"""Alerts tests: the trading world, a fresh alert book, tasks recorded instead of sent, and a local
Telegram Bot API server."""

from __future__ import annotations

import pytest

from alerts import book
from tests.alerts.telegram_server import BotApiServer
from tests.trading_world import _fresh_trading_state, world  # noqa: F401


@pytest.fixture(autouse=True)
def sent_tasks(monkeypatch) -> list[tuple]:
    """The tasks the services queue, by name, in order (run by the tests themselves)."""
    sent: list[tuple] = []

    class _App:
        def send_task(self, name, args=None, kwargs=None, **options):
            sent.append((name, tuple(args or ())))

    monkeypatch.setattr("alerts.services.firing.current_app", _App())
    return sent


@pytest.fixture(autouse=True)
def fresh_book():
    """The process's alert book reloads from the database at its next batch."""
    book._book._version = object()
    book._book._checked_at = 0.0
    book._book._previous.clear()
    book._book._averages.clear()
    yield book._book


@pytest.fixture
def bot_api(settings):
    server = BotApiServer().start()
    settings.ALERTS_TELEGRAM_API_URL = server.url
    yield server
    server.stop()
