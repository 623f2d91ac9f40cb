"""Sessions end after 30 minutes idle or 12 hours in all (ASVS 4.0 3.3.2)."""

import time

import pytest
from django.conf import settings

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


def _client_with(**stamps):
    client = verified_client(make_user("alice"))
    assert client.get("/").status_code == 200  # starts the clocks
    session = client.session
    session.update(stamps)
    session.save()
    return client


def test_the_limits_are_thirty_minutes_idle_and_twelve_hours_in_all():
    assert settings.SESSION_IDLE_SECONDS == 30 * 60 and settings.SESSION_ABSOLUTE_SECONDS == 12 * 60 * 60


def test_an_idle_session_is_signed_out():
    client = _client_with(seen_at=time.time() - settings.SESSION_IDLE_SECONDS - 5)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_old_session_is_signed_out_even_when_busy():
    client = _client_with(auth_at=time.time() - settings.SESSION_ABSOLUTE_SECONDS - 5, seen_at=time.time())
    assert client.get("/").status_code == 302


def test_an_active_session_stays_signed_in():
    client = _client_with(seen_at=time.time() - 60)
    assert client.get("/").status_code == 200
