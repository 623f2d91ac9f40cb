"""API keys: shown once, stored hashed, scoped, bound to source addresses, revocable."""

import hashlib

import pytest
from django.test import Client, RequestFactory, override_settings

from accounts.auth import require_scope, trade_scope_required
from accounts.credentials import api_key_create, api_key_revoke
from accounts.errors import ApiKeyNotFound, InsufficientScope, InvalidApiKeyInput
from accounts.models import ApiKey
from audit.models import AuditEvent

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

ME = "/api/accounts/me"


@pytest.fixture
def alice():
    return make_user("alice")


def _me(secret: str, **extra):
    return Client().get(ME, HTTP_X_API_KEY=secret, **extra)


def test_a_key_is_stored_hashed_and_acts_as_its_user_within_its_scope(alice):
    key, secret = api_key_create(user=alice, name="bot", scope="read", allowed_ips=[])
    row = ApiKey.objects.get(pk=key.pk)
    assert secret.startswith(f"atk_{row.prefix}_") and secret not in str(row.__dict__)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    response = _me(secret)
    assert response.status_code == 200 and response.json() == {
        "id": alice.pk,
        "username": "alice",
        "scope": "read",
        "memberships": [],
    }
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert AuditEvent.objects.get(action="apikey.created").payload_data["scope"] == "read"


def test_write_routes_refuse_a_read_key_with_insufficient_scope():
    request = RequestFactory().post("/api/orders")
    request.auth_scope = "read"
    with pytest.raises(InsufficientScope) as error:
        require_scope(request, "trade")
    assert error.value.status == 403 and error.value.code == "insufficient_scope"
    require_scope(request, "read")
    view = trade_scope_required(lambda request: "placed")
    with pytest.raises(InsufficientScope):
        view(request)
    request.auth_scope = "trade"
    assert view(request) == "placed"


@pytest.mark.parametrize(
    ("secret", "code"),
    [("nonsense", "api_key_invalid"), ("atk_ffffffffffff_secret", "api_key_invalid"), ("atk__x", "api_key_invalid")],
)
def test_a_malformed_or_unknown_key_is_refused_and_audited(secret, code):
    response = _me(secret)
    assert response.status_code == 401 and response.json()["code"] == code
    assert AuditEvent.objects.filter(action="apikey.denied").exists()


def test_a_key_with_a_wrong_secret_is_refused(alice):
    _, secret = api_key_create(user=alice, name="bot", scope="trade", allowed_ips=[])
    response = _me(secret[:-2] + ("aa" if not secret.endswith("aa") else "bb"))
    assert response.status_code == 401 and response.json()["code"] == "api_key_invalid"


def test_a_revoked_key_is_refused_and_both_events_are_audited(alice):
    key, secret = api_key_create(user=alice, name="bot", scope="trade", allowed_ips=[])
    api_key_revoke(user=alice, key_id=key.pk)
    response = _me(secret)
    assert response.status_code == 401 and response.json()["code"] == "api_key_revoked"
    assert AuditEvent.objects.filter(action="apikey.revoked").exists()
    assert AuditEvent.objects.filter(action="apikey.denied").last().payload_data["reason"] == "revoked"


def test_nobody_revokes_someone_else_s_key(alice):
    key, _ = api_key_create(user=alice, name="bot", scope="trade", allowed_ips=[])
    with pytest.raises(ApiKeyNotFound):
        api_key_revoke(user=make_user("mallory"), key_id=key.pk)


def test_a_key_bound_to_addresses_is_refused_from_anywhere_else(alice):
    _, secret = api_key_create(user=alice, name="bot", scope="trade", allowed_ips=["203.0.113.7", "198.51.100.0/24"])
    assert _me(secret, REMOTE_ADDR="203.0.113.7").status_code == 200
    assert _me(secret, REMOTE_ADDR="198.51.100.200").status_code == 200
    response = _me(secret, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 403 and response.json()["code"] == "ip_not_allowed"
    assert AuditEvent.objects.filter(action="apikey.denied").last().payload_data["reason"] == "ip_not_allowed"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/24"])
def test_behind_the_proxy_a_forged_forwarded_address_does_not_pass_the_binding(alice):
    _, secret = api_key_create(user=alice, name="bot", scope="trade", allowed_ips=["203.0.113.7"])
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    assert _me(secret, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy).status_code == 200
    assert _me(secret, HTTP_X_FORWARDED_FOR="203.0.113.7, 192.0.2.1", **proxy).status_code == 403


@pytest.mark.parametrize(
    ("name", "scope", "ips"),
    [("", "read", []), ("bot", "admin", []), ("bot", "read", ["not-an-ip"]), ("bot", "read", ["10.0.0.5/24"])],
)
def test_bad_key_input_is_refused_before_anything_is_written(alice, name, scope, ips):
    with pytest.raises(InvalidApiKeyInput):
        api_key_create(user=alice, name=name, scope=scope, allowed_ips=ips)
    assert not ApiKey.objects.exists()


def test_the_profile_page_shows_a_new_secret_once_and_revokes_keys(alice):
    client = verified_client(alice)
    created = client.post("/account/api-keys/", {"name": "bot", "scope": "read", "allowed_ips": "203.0.113.7"})
    assert created.status_code == 200 and b'id="new-api-key"' in created.content
    key = ApiKey.objects.get(user=alice)
    assert key.allowed_ips == ["203.0.113.7/32"]
    assert b'id="new-api-key"' not in client.get("/account/").content
    bad = client.post("/account/api-keys/", {"name": "bot", "scope": "read", "allowed_ips": "nope"})
    assert bad.status_code == 400 and b"not an IP address" in bad.content
    assert client.post(f"/account/api-keys/{key.pk}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
