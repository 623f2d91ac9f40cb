"""Bad credentials from one address: audited once a window, aggregated, refused past the limit.

Runs on the store the settings choose: this process's memory in standalone mode, Redis when
REDIS_URL is set (each test under its own key prefix, tests/accounts/conftest.py).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.failures import AGGREGATE_ACTION, failure_record, failures_flush
from accounts.tasks import auth_failures_flush
from audit.models import AuditEvent
from tests.accounts.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/accounts/me"
ATTACKER = "198.51.100.7"
BYSTANDER = "203.0.113.20"
WINDOW = 60
_clock = {"offset": 0.0}


@pytest.fixture(autouse=True)
def _window_and_clock(settings, monkeypatch):
    """A 60 s window and a clock the test moves on (``_after_the_window``) instead of sleeping."""
    settings.AUTH_FAILURE_WINDOW_SECONDS = WINDOW
    settings.AUTH_FAILURE_LIMIT = 20
    _clock["offset"] = 0.0
    monkeypatch.setattr("accounts.failures._now", lambda: time.time() + _clock["offset"])


def _bad_bearer(client: Client, n: int, address: str = ATTACKER) -> list:
    return [client.get(ME, HTTP_AUTHORIZATION=f"Bearer garbage.{i}.token", REMOTE_ADDR=address) for i in range(n)]


def _rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _after_the_window() -> None:
    _clock["offset"] += WINDOW + 1


def test_two_thousand_bad_bearer_tokens_leave_two_audit_rows_and_the_aggregate_counts_them_all():
    responses = _bad_bearer(Client(), 2000)
    codes = [r.json()["code"] for r in responses]
    assert codes[:20] == ["token_invalid"] * 20 and set(codes[20:]) == {"too_many_failures"}
    assert len(_rows("auth.token_denied")) == 1
    _after_the_window()
    assert auth_failures_flush() == 1  # the beat task: no further request is needed
    assert len(AuditEvent.objects.filter(action__in=["auth.token_denied", AGGREGATE_ACTION])) == 2
    (aggregate,) = _rows(AGGREGATE_ACTION)
    payload = aggregate.payload_data
    assert payload["attempts"] == 2000 and payload["count"] == 20 and payload["refused"] == 1980
    assert payload["source"] == ATTACKER and aggregate.ip == ATTACKER
    assert payload["reasons"] == {"auth.token_denied:token_invalid": 20}
    assert payload["first_at"] < payload["last_at"]
    assert len(payload["samples"]) == 5 and all(len(s) == 12 for s in payload["samples"])
    assert "garbage" not in aggregate.payload  # only hash prefixes of what was presented
    assert failures_flush() == 0  # flushed once


def test_past_the_limit_the_answer_is_429_with_retry_after_before_any_query():
    client = Client()
    _bad_bearer(client, 20)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ME, HTTP_AUTHORIZATION="Bearer still.garbage", REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429 and response.json()["code"] == "too_many_failures"
    assert 1 <= int(response["Retry-After"]) <= WINDOW
    assert len(queries) == 0


def test_another_address_is_unaffected():
    _bad_bearer(Client(), 100)
    response = Client().get(ME, HTTP_AUTHORIZATION="Bearer garbage", REMOTE_ADDR=BYSTANDER)
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"
    assert [e.ip for e in _rows("auth.token_denied")] == [ATTACKER, BYSTANDER]


def test_the_next_failure_after_the_window_writes_the_aggregate_and_is_audited_as_a_first():
    _bad_bearer(Client(), 5)
    _after_the_window()
    response = _bad_bearer(Client(), 1)[0]
    assert response.status_code == 401
    assert len(_rows("auth.token_denied")) == 2
    (aggregate,) = _rows(AGGREGATE_ACTION)
    assert aggregate.payload_data["attempts"] == 5
    assert failures_flush() == 0  # the new window has not ended


def test_a_single_failure_has_its_own_event_and_no_aggregate():
    _bad_bearer(Client(), 1)
    _after_the_window()
    failures_flush()
    assert len(_rows("auth.token_denied")) == 1 and _rows(AGGREGATE_ACTION) == []


def test_malformed_authorization_headers_and_bad_api_keys_are_counted_alike():
    client = Client()
    for i in range(10):
        client.get(ME, HTTP_AUTHORIZATION=f"Basic {i}", REMOTE_ADDR=ATTACKER)
        client.get(ME, HTTP_X_API_KEY=f"atk_nope{i}_secret", REMOTE_ADDR=ATTACKER)
    response = client.get(ME, HTTP_X_API_KEY="atk_x_y", REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429
    assert len(_rows("auth.token_denied")) == 1 and _rows("apikey.denied") == []
    _after_the_window()
    failures_flush()
    payload = _rows(AGGREGATE_ACTION)[0].payload_data
    assert payload["reasons"] == {
        "auth.token_denied:malformed_authorization": 10,
        "apikey.denied:unknown": 10,
    }
    assert payload["attempts"] == 21 and payload["refused"] == 1


def test_a_valid_token_still_works_from_another_address():
    from tests.accounts.test_api_tokens import _obtain  # the sign-in the token tests use

    alice = make_user("alice")
    _bad_bearer(Client(), 50)
    access = _obtain(Client(), alice).json()["access_token"]
    response = Client().get(ME, HTTP_AUTHORIZATION=f"Bearer {access}", REMOTE_ADDR=BYSTANDER)
    assert response.status_code == 200


def test_password_spraying_from_one_address_is_aggregated_and_then_refused(settings):
    settings.AUTH_FAILURE_LIMIT = 5
    client = Client(REMOTE_ADDR=ATTACKER)
    answers = [
        client.post(
            "/api/accounts/auth/token",
            {"username": f"user{i}", "password": "wrong-password", "otp": "123456"},
            content_type="application/json",
        )
        for i in range(8)
    ]
    assert [a.json()["code"] for a in answers] == ["invalid_credentials"] * 5 + ["too_many_failures"] * 3
    assert len(_rows("auth.login_failed")) == 1
    _after_the_window()
    failures_flush()
    payload = _rows(AGGREGATE_ACTION)[0].payload_data
    assert payload["reasons"] == {"auth.login_failed:invalid_credentials": 5} and payload["refused"] == 3


def test_when_the_counters_cannot_be_reached_a_failure_is_refused_503_unaudited(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = Client().get(ME, HTTP_AUTHORIZATION="Bearer garbage", REMOTE_ADDR=ATTACKER)
    assert response.status_code == 503 and response.json()["code"] == "rate_limiter_unavailable"
    assert _rows("auth.token_denied") == []


def test_a_window_whose_aggregate_cannot_be_written_is_flushed_later(monkeypatch):
    from accounts.audit import record as audit_record

    _bad_bearer(Client(), 3)
    _after_the_window()

    def refuse(**kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr("accounts.failures.audit.record", refuse)
    with pytest.raises(RuntimeError):
        failures_flush()
    monkeypatch.setattr("accounts.failures.audit.record", audit_record)
    assert failures_flush() == 1
    assert _rows(AGGREGATE_ACTION)[0].payload_data["attempts"] == 3


def test_concurrent_failures_are_all_counted(rf):
    request = rf.get(ME, REMOTE_ADDR=ATTACKER)

    def fail(n: int) -> None:
        try:
            for i in range(n):
                failure_record(
                    request=request, action="auth.token_denied", reason="token_invalid", presented=str(i), payload={}
                )
        finally:
            connection.close()  # this thread's own connection (the first failure is audited from one of them)

    threads = [threading.Thread(target=fail, args=(50,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _after_the_window()
    failures_flush()
    assert _rows(AGGREGATE_ACTION)[0].payload_data["count"] == 400
    assert len(_rows("auth.token_denied")) == 1
