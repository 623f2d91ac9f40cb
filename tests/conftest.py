"""Suite-wide fixtures.

Tests that need a real service are marked ``postgres`` or ``redis``. Locally they are skipped when
the service is not configured; with CI=true they fail instead, so CI can never go green by skipping.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

pytest_plugins = ["tests.aws"]  # the `aws` fixture: a local S3 and KMS server (moto server mode)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required services must be present)")
    pytest.skip(reason)


def redis_available() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(autouse=True)
def _require_services(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if request.node.get_closest_marker("redis") and not redis_available():
        _missing("needs Redis: set REDIS_URL=redis://... to a running server")


@pytest.fixture(scope="session", autouse=True)
def _audit_table_flush() -> None:
    """Transactional tests end with a flush; see tests/audit_flush.py for how it passes the audit triggers."""
    from tests.audit_flush import flush_through_audit_triggers

    with flush_through_audit_triggers():
        yield


@pytest.fixture
def otp_login():
    """``otp_login(client, user)``: sign in with both factors (a password-only session reaches nothing)."""
    from tests.otp_session import login_with_otp

    return login_with_otp


@pytest.fixture
def empty_task_queues():
    """Celery's queues emptied before the test: a task an earlier test published with no worker to run
    it (an export job queued by a page) would otherwise age on the broker until the health check,
    rightly, calls the queue stale."""
    from django.conf import settings
    from kombu.transport.memory import Channel

    from infra import health
    from infra.queues import queue_names

    for queue in queue_names():
        Channel.queues.pop(queue, None)
    keys = [queue + suffix for queue in queue_names() for suffix in health._REDIS_PRIORITY_SUFFIXES]
    if settings.REDIS_URL and keys:  # no queues declared (a test's own Celery app): nothing to empty
        health._redis_client().delete(*keys)
