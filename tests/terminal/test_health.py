import json
import time

import pytest

from terminal.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_health_is_200_with_one_entry_per_dependency(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert {"database", "redis", "celery"} <= set(body["checks"])
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert "depth" in body["checks"]["celery"] and "oldest_age_s" in body["checks"]["celery"]


def test_health_needs_no_login_and_sets_a_request_id(client):
    response = client.get("/api/health", HTTP_X_REQUEST_ID="probe-12345678")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "probe-12345678"


def test_health_is_503_naming_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert "redis" in body["failed"]
    assert body["checks"]["redis"]["status"] == "fail" and "Connection" in body["checks"]["redis"]["error"]


def test_health_is_503_naming_the_database_when_it_is_too_slow(client, settings):
    settings.HEALTH_DB_LATENCY_MS = 0  # any real round trip takes longer than 0 ms
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]


@pytest.mark.redis
def test_health_reports_queue_depth_and_the_age_of_the_oldest_waiting_task(client, settings):
    import redis

    queue = "reports"
    conn = redis.Redis.from_url(settings.REDIS_URL)
    conn.delete(queue)
    try:
        celery_app.send_task("compliance.tasks.nothing", queue=queue)
        time.sleep(0.05)
        celery_app.send_task("compliance.tasks.nothing", queue=queue)
        report = client.get("/api/health").json()["checks"]["celery"]
        assert report["transport"] == "redis"
        assert report["queues"][queue]["depth"] == 2
        assert report["queues"][queue]["oldest_age_s"] >= 0.05
        settings.HEALTH_QUEUE_AGE_SECONDS = 0
        stale = client.get("/api/health")
        assert stale.status_code == 503 and "celery" in stale.json()["failed"]
    finally:
        conn.delete(queue)


def test_health_reports_the_in_memory_queue_in_standalone_mode(settings):
    from kombu.transport.memory import Channel

    from terminal.health import _queue_stats_memory

    with celery_app.connection("memory://localhost/") as conn:
        conn.default_channel.queue_declare("reports")
        conn.default_channel._put("reports", {"headers": {"x-published-at": time.time() - 2}, "body": ""})
        try:
            stats = _queue_stats_memory()
            assert stats["reports"]["depth"] == 1
            assert stats["reports"]["oldest_age_s"] >= 2
        finally:
            Channel.queues.pop("reports", None)


def test_a_health_report_is_valid_json_even_when_a_check_raises(client, monkeypatch):
    from terminal import health

    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(health._checks, "broken", broken)
    response = client.get("/api/health")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["broken"] == {"status": "fail", "error": "RuntimeError: disk on fire"}
