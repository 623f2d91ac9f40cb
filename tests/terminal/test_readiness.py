"""``/api/health/ready`` decides whether a web process serves: the database and Redis only, so that a
stopped beat or feed fails ``/api/health`` (an alert) without taking every web process out of service."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_stopped_beat_fails_health_but_not_readiness(settings, monkeypatch):
    from infra import health

    # Beat expected for long (standalone with beat in-process, or full stack), its heartbeat too old.
    monkeypatch.setattr(health, "_beat_expected_since", 0.0)
    monkeypatch.setattr(health, "_PROCESS_STARTED_AT", 0.0)
    settings.CELERY_BEAT_STALE_SECONDS = 0
    full = Client().get("/api/health")
    ready = Client().get("/api/health/ready")
    assert full.status_code == 503 and "beat" in full.json()["failed"]
    assert ready.status_code == 200 and set(ready.json()["checks"]) <= {"database", "redis"}


def test_readiness_fails_naming_the_database_when_it_is_too_slow(settings):
    settings.HEALTH_DB_LATENCY_MS = -1
    response = Client().get("/api/health/ready")
    assert response.status_code == 503 and response.json()["failed"] == ["database"]
