"""The brokers' scrape-time metrics: sessions by state for families with a daily login, and the
durable update queue's backlog, each read in one query whenever /metrics is scraped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from brokers import metrics as broker_metrics
from brokers.adapters import registry
from brokers.adapters.base import Login
from brokers.models import BrokerAccount, InboundUpdate
from brokers.services.inbox import inbox_backlog
from brokers.services.sessions import session_counts, session_end, session_start
from paper.adapter import PaperAdapter

pytestmark = pytest.mark.django_db


class _DailyLoginBroker(PaperAdapter):
    login = Login(kind="redirect", credentials=("api_key", "api_secret"), expires_at_ist="06:00")


@pytest.fixture
def daily():
    registry.register("daily", _DailyLoginBroker)
    yield "daily"
    registry.unregister("daily")


def _samples(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _sessions(samples, broker):
    return {
        state: samples.get(("terminal_broker_sessions", (("broker", broker), ("state", state))))
        for state in ("live", "lapsed")
    }


def _account(world, broker, code, **fields):
    return BrokerAccount.objects.create(organisation=world.org, label=code, broker=broker, client_code=code, **fields)


def test_sessions_are_counted_live_or_lapsed_per_broker_for_active_accounts_of_daily_login_families(
    world, daily, client
):
    now = timezone.now()
    live = _account(world, daily, "LIVE")
    session_start(account=live, secrets={"access_token": "t"}, expires_at=now + timedelta(hours=8))
    expired = _account(world, daily, "EXPIRED")  # past the broker's cut-off, never ended by us
    session_start(account=expired, secrets={"access_token": "t"}, expires_at=now - timedelta(minutes=1))
    ended = _account(world, daily, "ENDED")
    session_start(account=ended, secrets={"access_token": "t"}, expires_at=now + timedelta(hours=8))
    session_end(account_id=ended.pk, reason="the broker refused the token")
    _account(world, daily, "NEVER")  # never signed in: it cannot trade either
    _account(world, daily, "OFF", is_active=False)  # switched off: not counted

    samples = _sessions(_samples(client), daily)
    assert samples == {"live": 1.0, "lapsed": 3.0}
    # Every daily-login family reports both states, 0 included; the paper exchange has no login.
    assert _sessions(_samples(client), "kite") == {"live": 0.0, "lapsed": 0.0}
    assert _sessions(_samples(client), "paper") == {"live": None, "lapsed": None}


def test_the_session_counts_are_one_grouped_query(world, daily):
    for code in ("A", "B", "C"):
        _account(world, daily, code)
    with CaptureQueriesContext(connection) as queries:
        counts = session_counts([daily, "kite"])
    assert len(queries) == 1
    assert counts == {(daily, "live"): 0, (daily, "lapsed"): 3, ("kite", "live"): 0, ("kite", "lapsed"): 0}


def test_the_update_queue_reports_what_waits_and_the_age_of_the_oldest(world, client):
    account = _account(world, "paper", "QUEUE1")
    now = timezone.now()

    def received(seconds_ago, applied=False):
        at = now - timedelta(seconds=seconds_ago)
        return InboundUpdate.objects.create(
            account=account, source="postback", update={}, received_at=at, applied_at=at if applied else None
        )

    received(600, applied=True)  # applied long ago: not waiting
    oldest = received(90)
    received(5)
    samples = _samples(client)
    assert samples[("terminal_broker_updates_pending", ())] == 2.0
    assert 90 <= samples[("terminal_broker_updates_oldest_pending_age_seconds", ())] < 120
    with CaptureQueriesContext(connection) as queries:
        assert inbox_backlog(now)[0] == 2
    assert len(queries) == 1

    InboundUpdate.objects.filter(pk=oldest.pk).update(applied_at=now)
    assert 5 <= _samples(client)[("terminal_broker_updates_oldest_pending_age_seconds", ())] < 30
    InboundUpdate.objects.update(applied_at=now)
    samples = _samples(client)
    assert samples[("terminal_broker_updates_pending", ())] == 0.0
    assert samples[("terminal_broker_updates_oldest_pending_age_seconds", ())] == 0.0


def test_a_database_error_leaves_the_broker_gauges_empty_and_the_scrape_answering(client, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(broker_metrics, "session_counts", broken)
    samples = _samples(client)
    gauges = ("terminal_broker_sessions", "terminal_broker_updates_")  # the collector's, read from the database
    assert not any(name.startswith(gauges) for name, _labels in samples)
    assert ("terminal_health_check_ok", (("check", "database"),)) in samples


def test_the_multiprocess_registry_serves_every_scrape_time_collector(monkeypatch, tmp_path):
    from infra import metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = generate_latest(metrics._registry()).decode()
    for name in (
        "terminal_health_check_ok",
        "terminal_broker_sessions",
        "terminal_broker_updates_oldest_pending_age_seconds",
        "terminal_market_open",
    ):
        assert f"# TYPE {name} gauge" in text
