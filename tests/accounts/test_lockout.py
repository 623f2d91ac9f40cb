"""Brute-force lockout (django-axes): per username and client address, behind the reverse proxy."""

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent

from .conftest import PASSWORD, make_user, totp_code

pytestmark = pytest.mark.django_db


def _login(client: Client, password: str, **extra):
    return client.post("/login/", {"username": "alice", "password": password}, **extra)


def test_a_username_is_locked_out_after_the_configured_failures_and_it_is_audited():
    make_user("alice")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "wrong-password").status_code == 200
    assert _login(client, "wrong-password").status_code == 429
    locked = _login(client, PASSWORD)  # even the right password is refused now
    assert locked.status_code == 429 and b"locked" in locked.content
    # The first failure from the address is audited at once; its repeats go into one auth.denied_repeated.
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1
    assert AuditEvent.objects.filter(action="auth.lockout").exists()


@override_settings(TRUSTED_PROXIES=["10.0.0.0/24"])
def test_behind_the_proxy_the_lockout_holds_the_client_address_not_the_proxy():
    make_user("alice")
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "wrong-password", HTTP_X_FORWARDED_FOR="198.51.100.1", **proxy)
    assert _login(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1", **proxy).status_code == 429
    # A forged left-hand entry does not move the attacker to a fresh address...
    spoofed = _login(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1", **proxy)
    assert spoofed.status_code == 429
    # ...and another client behind the same proxy can still sign in.
    assert _login(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.44", **proxy).status_code == 302


def test_wrong_one_time_codes_count_towards_the_lockout():
    user = make_user("alice")
    client = Client()
    assert _login(client, PASSWORD).status_code == 302
    device = TOTPDevice.objects.get(user=user)
    wrong = f"{(int(totp_code(device)) + 500_000) % 1_000_000:06d}"
    statuses = [
        client.post("/account/otp/verify/", {"token": wrong}).status_code for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429 and statuses[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert client.get("/").status_code == 302  # signed out
    assert _login(Client(), PASSWORD).status_code == 429


def test_api_sign_in_is_locked_out_too():
    make_user("alice")
    client = Client()
    body = {"username": "alice", "password": "wrong-password", "otp": "123456"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/api/accounts/auth/token", body, content_type="application/json")
        assert response.status_code == 401 and response.json()["code"] == "invalid_credentials"
    response = client.post("/api/accounts/auth/token", body, content_type="application/json")
    assert response.status_code == 429 and response.json()["code"] == "locked_out"
