"""The session's user and second-factor device are read through the cache, and every change to
them counts from the next request (accounts.auth_cache, docs/rbac.md)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_otp.plugins.otp_totp.models import TOTPDevice

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db(transaction=True)  # invalidation also runs after commit


def _whoami(client):
    return client.get("/api/v1/whoami")


def test_a_signed_in_request_reads_neither_user_nor_device_from_the_database_once_cached():
    client = verified_client(make_user("alice"))
    assert _whoami(client).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _whoami(client).status_code == 200
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "accounts_user" not in tables and "otp_" not in tables and "django_session" not in tables


def test_a_password_change_ends_other_sessions_at_their_next_request():
    user = make_user("alice")
    client = verified_client(user)
    assert _whoami(client).status_code == 200  # cached now
    user.set_password("another-long-password")
    user.save()
    assert _whoami(client).status_code == 401


def test_deactivating_a_user_ends_their_session_at_the_next_request():
    user = make_user("alice")
    client = verified_client(user)
    assert _whoami(client).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert _whoami(client).status_code == 401


def test_deleting_a_user_ends_their_session_at_the_next_request():
    user = make_user("alice")
    client = verified_client(user)
    assert _whoami(client).status_code == 200
    user.delete()
    assert _whoami(client).status_code == 401


def test_removing_the_device_that_verified_the_session_asks_for_the_second_factor_again():
    user = make_user("alice")
    client = verified_client(user)
    assert _whoami(client).status_code == 200
    TOTPDevice.objects.filter(user=user).get().delete()
    response = _whoami(client)
    assert response.status_code == 401 and response.json()["code"] == "otp_required"


def test_an_unconfirmed_device_no_longer_counts_as_the_second_factor():
    user = make_user("alice")
    client = verified_client(user)
    assert _whoami(client).status_code == 200
    device = TOTPDevice.objects.get(user=user)
    device.confirmed = False
    device.save()
    assert _whoami(client).json()["code"] == "otp_required"


def test_with_the_cache_off_every_request_reads_the_database(settings):
    settings.AUTH_CACHE_SECONDS = 0
    user = make_user("alice")
    client = verified_client(user)
    assert _whoami(client).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _whoami(client).status_code == 200
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "accounts_user" in tables and "otp_totp_totpdevice" in tables


def test_a_verified_sessions_user_and_device_come_from_the_cache_in_one_round_trip(monkeypatch):
    from accounts import auth_cache

    client = verified_client(make_user("alice"))
    assert _whoami(client).status_code == 200  # both cached now
    calls = []
    real = auth_cache.cache

    class Counting:
        def __getattr__(self, name):
            method = getattr(real, name)

            def call(*args, **kwargs):
                calls.append(name)
                return method(*args, **kwargs)

            return call

    monkeypatch.setattr(auth_cache, "cache", Counting())
    with CaptureQueriesContext(connection) as queries:
        assert _whoami(client).status_code == 200
    assert calls == ["get_many"]
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "accounts_user" not in tables and "otp_" not in tables
