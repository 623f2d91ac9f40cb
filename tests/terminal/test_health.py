import json
import time

import pytest
from django.core.cache import cache

from config.celery import app as celery_app
from infra import health
from infra.tasks import BEAT_HEARTBEAT_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_task_queues")]


def test_health_is_200_with_one_entry_per_dependency(client, beat_alive):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert {"database", "redis", "celery", "beat"} <= set(body["checks"])
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert "depth" in body["checks"]["celery"] and "oldest_age_s" in body["checks"]["celery"]


def test_health_needs_no_login_and_sets_a_request_id(client, beat_alive):
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
        celery_app.send_task("audit.tasks.nothing", queue=queue)
        time.sleep(0.05)
        celery_app.send_task("audit.tasks.nothing", queue=queue)
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

    from infra.health import _queue_stats_memory

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
    from infra import health

    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(health._checks, "broken", broken)
    response = client.get("/api/health")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["broken"] == {"status": "fail", "error": "RuntimeError: disk on fire"}


def test_beat_is_not_checked_in_standalone_mode_when_this_process_runs_no_beat(client, settings, monkeypatch):
    settings.STANDALONE = True
    monkeypatch.setattr(health, "_beat_expected_since", None)  # run_terminal --no-celery, or a test process
    assert client.get("/api/health").json()["checks"]["beat"]["status"] == "not_configured"


def test_a_freshly_started_beat_passes_until_the_stale_time_then_fails_without_a_heartbeat(
    client, settings, monkeypatch
):
    settings.STANDALONE, settings.CELERY_BEAT_STALE_SECONDS = True, 60
    cache.delete(BEAT_HEARTBEAT_KEY)
    monkeypatch.setattr(health, "_beat_expected_since", time.time() - 5)
    starting = client.get("/api/health").json()["checks"]["beat"]
    assert starting["status"] == "ok" and starting["last_seen_s"] is None and "starting" in starting["detail"]
    monkeypatch.setattr(health, "_beat_expected_since", time.time() - 61)
    response = client.get("/api/health")
    assert response.status_code == 503 and "beat" in response.json()["failed"]
    assert "no heartbeat since start-up" in response.json()["checks"]["beat"]["detail"]


def test_full_stack_expects_beat_from_process_start(client, settings, monkeypatch):
    settings.STANDALONE, settings.CELERY_BEAT_STALE_SECONDS = False, 60
    monkeypatch.setattr(health, "_PROCESS_STARTED_AT", time.time() - 3600)
    cache.set(BEAT_HEARTBEAT_KEY, time.time() - 61, timeout=None)
    try:
        response = client.get("/api/health")
        assert response.status_code == 503 and "beat" in response.json()["failed"]
        assert response.json()["checks"]["beat"]["last_seen_s"] >= 61
    finally:
        cache.delete(BEAT_HEARTBEAT_KEY)


# Transactional: starting a worker closes the starting thread's database connections (Celery's Django
# fixup), which a test wrapped in one transaction could not reopen.
@pytest.mark.django_db(transaction=True)
def test_health_goes_ok_with_beat_and_a_worker_running_and_fails_naming_beat_once_beat_stops(
    client, settings, monkeypatch, tmp_path
):
    from config.standalone import start_celery_in_process

    # Beat with only its heartbeat, every 0.2 s instead of 30, and a stale time to match.
    schedule = {"beat-heartbeat": {"task": "infra.tasks.beat_heartbeat", "schedule": 0.2}}
    monkeypatch.setitem(celery_app.conf, "beat_schedule", schedule)
    monkeypatch.setattr(health, "_beat_expected_since", None)
    settings.CELERY_BEAT_STALE_SECONDS = 1
    cache.delete(BEAT_HEARTBEAT_KEY)
    worker, beat = start_celery_in_process(schedule_path=str(tmp_path / "celerybeat-schedule"))
    try:
        deadline, response = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            response = client.get("/api/health")
            if response.json()["checks"]["beat"]["last_seen_s"] is not None:
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.json()
        assert response.json()["checks"]["beat"]["status"] == "ok"
        beat.stop()
        deadline = time.monotonic() + 30
        response = client.get("/api/health")
        while response.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker may still run heartbeats beat queued before it stopped
            response = client.get("/api/health")
        assert response.status_code == 503 and "beat" in response.json()["failed"], response.json()
        assert "no heartbeat for over 1 s" in response.json()["checks"]["beat"]["detail"]
        assert response.json()["checks"]["beat"]["last_seen_s"] >= 1
    finally:
        beat.stop()
        worker.stop()
        cache.delete(BEAT_HEARTBEAT_KEY)
