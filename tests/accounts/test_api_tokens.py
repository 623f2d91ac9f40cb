"""API sign-in: JWT access tokens, rotating refresh tokens, and refusals with clear codes."""

import uuid
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.credentials import access_token_issue, signing_keys
from accounts.models import RefreshToken
from accounts.otp import backup_codes_issue
from audit.models import AuditEvent

from .conftest import PASSWORD, make_user, password_only_client, totp_code

pytestmark = pytest.mark.django_db

TOKEN = "/api/accounts/auth/token"
ME = "/api/accounts/me"


@pytest.fixture
def alice():
    return make_user("alice")


def _obtain(client: Client, user, **overrides):
    body = {"username": user.username, "password": PASSWORD, "otp": totp_code(TOTPDevice.objects.get(user=user))}
    body.update(overrides)
    return client.post(TOKEN, body, content_type="application/json")


def _me(token: str):
    return Client().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


def _claims(user, **overrides):
    now = timezone.now()
    family = RefreshToken.objects.filter(user=user).first().family
    claims = {
        "sub": str(user.pk),
        "fam": str(family),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "aud": settings.JWT_AUDIENCE,
        "iss": settings.JWT_ISSUER,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _kid_and_key():
    return next(iter(signing_keys().items()))


def test_password_and_totp_give_an_access_token_that_reaches_the_api(alice):
    response = _obtain(Client(), alice)
    assert response.status_code == 200
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == settings.JWT_ACCESS_SECONDS
    assert jwt.get_unverified_header(tokens["access_token"])["kid"] == _kid_and_key()[0]
    me = _me(tokens["access_token"])
    assert me.status_code == 200 and me.json()["username"] == "alice" and me.json()["scope"] == "trade"
    assert AuditEvent.objects.filter(action="auth.login", actor=f"user:{alice.pk}").exists()


def test_a_wrong_code_or_password_gives_no_token(alice):
    wrong_otp = _obtain(Client(), alice, otp="abcdefgh")
    assert wrong_otp.status_code == 401 and wrong_otp.json()["code"] == "invalid_otp"
    wrong_password = _obtain(Client(), alice, password="not-the-password")
    assert wrong_password.status_code == 401 and wrong_password.json()["code"] == "invalid_credentials"
    assert AuditEvent.objects.filter(action="auth.otp_failed").exists()
    assert AuditEvent.objects.filter(action="auth.login_failed").exists()


def test_a_backup_code_gives_a_token_once(alice):
    code = backup_codes_issue(user=alice)[0]
    assert _obtain(Client(), alice, otp=code).status_code == 200
    assert _obtain(Client(), alice, otp=code).json()["code"] == "invalid_otp"
    assert AuditEvent.objects.get(action="auth.otp_failed").payload_data == {"channel": "api", "kind": "backup"}


def test_a_totp_code_cannot_be_used_twice_for_tokens(alice):
    code = totp_code(TOTPDevice.objects.get(user=alice))
    assert _obtain(Client(), alice, otp=code).status_code == 200
    assert _obtain(Client(), alice, otp=code).json()["code"] == "invalid_otp"


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        ("alg_none", "token_invalid"),
        ("wrong_key", "token_invalid"),
        ("unknown_kid", "token_invalid"),
        ("expired", "token_expired"),
        ("wrong_audience", "token_invalid"),
        ("wrong_issuer", "token_invalid"),
        ("no_expiry", "token_invalid"),
        ("garbage", "token_invalid"),
    ],
)
def test_forged_or_expired_tokens_are_refused_and_audited(alice, forge, code):
    assert _obtain(Client(), alice).status_code == 200
    kid, key = _kid_and_key()
    if forge == "alg_none":
        token = jwt.encode(_claims(alice), None, algorithm="none", headers={"kid": kid})
    elif forge == "wrong_key":
        token = jwt.encode(_claims(alice), "x" * 32, algorithm="HS256", headers={"kid": kid})
    elif forge == "unknown_kid":
        token = jwt.encode(_claims(alice), key, algorithm="HS256", headers={"kid": "retired"})
    elif forge == "expired":
        past = timezone.now() - timedelta(hours=1)
        token = jwt.encode(_claims(alice, iat=past, exp=past + timedelta(minutes=5)), key, "HS256", {"kid": kid})
    elif forge == "wrong_audience":
        token = jwt.encode(_claims(alice, aud="someone-else"), key, algorithm="HS256", headers={"kid": kid})
    elif forge == "wrong_issuer":
        token = jwt.encode(_claims(alice, iss="someone-else"), key, algorithm="HS256", headers={"kid": kid})
    elif forge == "no_expiry":
        token = jwt.encode(_claims(alice, exp=None), key, algorithm="HS256", headers={"kid": kid})
    else:
        token = "not.a.jwt"
    response = _me(token)
    assert response.status_code == 401 and response.json()["code"] == code
    assert AuditEvent.objects.filter(action="auth.token_denied").last().payload_data["reason"] == code


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "Token abc", "bearer"])
def test_a_malformed_authorization_header_is_refused(header):
    response = Client().get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["code"] == "malformed_authorization"
    assert AuditEvent.objects.filter(action="auth.token_denied").exists()


def test_without_credentials_the_api_answers_401():
    response = Client().get(ME)
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_a_password_only_session_cannot_use_the_api(alice):
    response = password_only_client(alice).get(ME)
    assert response.status_code == 401 and response.json()["code"] == "otp_required"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(alice):
    first = _obtain(Client(), alice).json()
    second = Client().post("/api/accounts/auth/refresh", {"refresh_token": first["refresh_token"]}, "application/json")
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"] and _me(second["access_token"]).status_code == 200
    reused = Client().post("/api/accounts/auth/refresh", {"refresh_token": first["refresh_token"]}, "application/json")
    assert reused.status_code == 401 and reused.json()["code"] == "refresh_token_reused"
    # The thief's and the owner's tokens of that sign-in all stop working.
    after = Client().post("/api/accounts/auth/refresh", {"refresh_token": second["refresh_token"]}, "application/json")
    assert after.status_code == 401 and after.json()["code"] == "refresh_token_revoked"
    assert _me(second["access_token"]).json()["code"] == "token_revoked"
    assert AuditEvent.objects.filter(action="auth.refresh_reused").exists()


def test_a_revoked_refresh_token_fails_and_its_access_tokens_stop(alice):
    tokens = _obtain(Client(), alice).json()
    revoke = Client().post("/api/accounts/auth/revoke", {"refresh_token": tokens["refresh_token"]}, "application/json")
    assert revoke.status_code == 204
    refresh = Client().post(
        "/api/accounts/auth/refresh", {"refresh_token": tokens["refresh_token"]}, "application/json"
    )
    assert refresh.status_code == 401 and refresh.json()["code"] == "refresh_token_revoked"
    assert _me(tokens["access_token"]).json()["code"] == "token_revoked"


def test_an_unknown_or_expired_refresh_token_fails(alice):
    unknown = Client().post("/api/accounts/auth/refresh", {"refresh_token": "nope"}, "application/json")
    assert unknown.status_code == 401 and unknown.json()["code"] == "refresh_token_invalid"
    tokens = _obtain(Client(), alice).json()
    RefreshToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = Client().post(
        "/api/accounts/auth/refresh", {"refresh_token": tokens["refresh_token"]}, "application/json"
    )
    assert expired.status_code == 401 and expired.json()["code"] == "refresh_token_expired"


def test_signing_keys_rotate_by_kid(alice):
    old, new = "old:" + "o" * 40, "new:" + "n" * 40
    assert _obtain(Client(), alice).status_code == 200
    family = RefreshToken.objects.get(user=alice).family
    with override_settings(JWT_SIGNING_KEYS=[old]):
        issued_before = access_token_issue(user=alice, family=family)
    with override_settings(JWT_SIGNING_KEYS=[new, old]):
        assert jwt.get_unverified_header(access_token_issue(user=alice, family=family))["kid"] == "new"
        assert _me(issued_before).status_code == 200  # the old key still verifies until it is retired
    with override_settings(JWT_SIGNING_KEYS=[new]):
        assert _me(issued_before).json()["code"] == "token_invalid"


def test_a_deactivated_user_s_token_stops_working(alice):
    tokens = _obtain(Client(), alice).json()
    alice.is_active = False
    alice.save()
    assert _me(tokens["access_token"]).status_code == 401
    assert uuid.UUID(jwt.decode(tokens["access_token"], options={"verify_signature": False})["fam"])


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": timedelta(days=3650)}, id="ten-year-expiry"),
        pytest.param({"exp": timedelta(hours=2)}, id="longer-than-issued"),
        pytest.param({"iat": timedelta(hours=1), "exp": timedelta(hours=1, minutes=5)}, id="issued-in-the-future"),
    ],
)
def test_a_validly_signed_token_living_longer_than_the_server_issues_is_refused(alice, overrides):
    assert _obtain(Client(), alice).status_code == 200
    kid, key = _kid_and_key()
    now = timezone.now()
    claims = _claims(alice, **{name: now + delta for name, delta in overrides.items()})
    response = _me(jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid}))
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"
    assert AuditEvent.objects.filter(action="auth.token_denied").last().payload_data["reason"] == "token_invalid"
