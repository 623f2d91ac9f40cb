"""API credentials: access tokens (JWT), rotating refresh tokens and API keys.

Access tokens are short-lived HS256 JWTs with a ``kid`` header naming the signing key, the
algorithm list fixed (never read from the token), and ``exp``, ``iat``, ``aud``, ``iss``, ``sub``
required. Each carries its refresh family (``fam``): revoking the family ends them too.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from accounts.errors import (
    ApiKeyInvalid,
    ApiKeyIpNotAllowed,
    ApiKeyNotFound,
    ApiKeyRevoked,
    ApiKeyScopeNotAllowed,
    InvalidApiKeyInput,
    InvalidCredentials,
    InvalidOtp,
    LockedOut,
    RefreshTokenInvalid,
    RefreshTokenReused,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from accounts.failures import failure_gate, failure_record
from accounts.models import ApiKey, ApiKeyScope, RefreshToken, User
from accounts.otp import otp_check
from accounts.selectors import trades_nowhere
from core.client_ip import client_ip

ALGORITHMS = ["HS256"]  # fixed: the token's own header never chooses the algorithm
API_KEY_PREFIX = "atk"
MAX_ALLOWED_IPS = 20
_LAST_USED_WRITE_INTERVAL = timedelta(minutes=1)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def signing_keys() -> dict[str, bytes]:
    """Return the verification keys by ``kid``; the first one signs.

    From JWT_SIGNING_KEYS (``kid:secret`` entries), else one key derived from SECRET_KEY.
    """
    keys: dict[str, bytes] = {}
    for entry in settings.JWT_SIGNING_KEYS:
        kid, _, secret = entry.partition(":")
        if kid and len(secret) >= 32:
            keys[kid] = secret.encode()
    if not keys:
        keys["default"] = hmac.new(settings.SECRET_KEY.encode(), b"jwt-signing-key", hashlib.sha256).digest()
    return keys


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


CLOCK_LEEWAY_SECONDS = 30  # clocks of the servers that issue and check a token may differ this much


def _numbers(*values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def access_token_issue(*, user: User, family: uuid.UUID) -> str:
    """Return a signed access token for ``user`` in refresh ``family``."""
    kid, key = next(iter(signing_keys().items()))
    now = timezone.now()
    claims = {
        "sub": str(user.pk),
        "fam": str(family),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + timedelta(seconds=settings.JWT_ACCESS_SECONDS),
        "aud": settings.JWT_AUDIENCE,
        "iss": settings.JWT_ISSUER,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHMS[0], headers={"kid": kid})


def access_token_authenticate(*, token: str) -> User:
    """Return the user of a valid, unrevoked access token.

    Raises TokenExpired, TokenRevoked (family revoked or user deactivated) or TokenInvalid
    (malformed, unknown ``kid``, wrong signature or algorithm, wrong audience or issuer).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid("The access token is malformed.") from exc
    key = signing_keys().get(header.get("kid")) if isinstance(header.get("kid"), str) else None
    if key is None:
        raise TokenInvalid("The access token names no known signing key.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={"require": ["exp", "iat", "aud", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("The access token has expired; refresh it.") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid(f"The access token is not valid: {exc}.") from exc
    # A validly signed token lives no longer than this server issues them for: a leaked signing key,
    # or a token minted elsewhere with a far ``exp``, must not grant access for years.
    lifetime = claims["exp"] - claims["iat"] if _numbers(claims["exp"], claims["iat"]) else None
    if lifetime is None or lifetime > settings.JWT_ACCESS_SECONDS + CLOCK_LEEWAY_SECONDS:
        raise TokenInvalid("The access token's lifetime is longer than this server allows.")
    if claims["iat"] > timezone.now().timestamp() + CLOCK_LEEWAY_SECONDS:
        raise TokenInvalid("The access token was issued in the future.")
    try:
        family = uuid.UUID(str(claims.get("fam")))
    except ValueError as exc:
        raise TokenInvalid("The access token has no valid family.") from exc
    user = User.objects.filter(pk=claims["sub"], is_active=True).first() if str(claims["sub"]).isdigit() else None
    if user is None or not RefreshToken.objects.filter(family=family, user=user, revoked_at__isnull=True).exists():
        raise TokenRevoked("The access token was revoked; sign in again.")
    return user


def _refresh_create(*, user: User, family: uuid.UUID) -> str:
    token = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        user=user,
        family=family,
        token_hash=_sha256(token),
        expires_at=timezone.now() + timedelta(seconds=settings.JWT_REFRESH_SECONDS),
    )
    return token


def token_obtain(*, request: HttpRequest, username: str, password: str, otp: str) -> TokenPair:
    """Sign in with password and one-time code; return a new access and refresh token.

    Raises LockedOut (too many failures), InvalidCredentials or InvalidOtp. Every outcome is audited;
    failures count towards the lockout. Raises TooManyFailures when the client's address failed too
    often (accounts.failures), before the password is hashed.
    """
    failure_gate(request)
    user = authenticate(request, username=username, password=password)
    if user is None:
        if getattr(request, "axes_locked_out", False):
            raise LockedOut("Too many failed sign-ins; try again later.")
        raise InvalidCredentials("The username or password is wrong.")
    if otp_check(user=user, token=otp, request=request, channel="api") is None:
        if getattr(request, "axes_locked_out", False):
            raise LockedOut("Too many failed sign-ins; try again later.")
        raise InvalidOtp("The one-time code is wrong or was already used.")
    family = uuid.uuid4()
    with transaction.atomic():
        refresh = _refresh_create(user=user, family=family)
    user_logged_in.send(sender=user.__class__, request=request, user=user)  # resets the lockout counter
    audit.record(actor=user, action="auth.login", target=user, payload={"channel": "api"}, request=request)
    return TokenPair(access_token_issue(user=user, family=family), refresh, settings.JWT_ACCESS_SECONDS)


def _revoke_family(family: uuid.UUID) -> int:
    return RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_refresh(*, request: HttpRequest, refresh: str) -> TokenPair:
    """Exchange a refresh token for a new pair; the presented token can never be used again.

    Raises RefreshTokenInvalid (unknown, expired or revoked) and RefreshTokenReused (already
    exchanged: the whole family is revoked, ending every token issued from that sign-in).
    """
    row = RefreshToken.objects.select_related("user").filter(token_hash=_sha256(refresh or "")).first()
    if row is None:
        raise RefreshTokenInvalid("The refresh token is not known.")
    if row.revoked_at is not None:
        raise RefreshTokenInvalid("The refresh token was revoked; sign in again.", code="refresh_token_revoked")
    if row.expires_at <= timezone.now():
        raise RefreshTokenInvalid("The refresh token has expired; sign in again.", code="refresh_token_expired")
    with transaction.atomic():
        claimed = RefreshToken.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=timezone.now())
        new_refresh = _refresh_create(user=row.user, family=row.family) if claimed else None
    if new_refresh is None:
        _revoke_family(row.family)
        audit.record(
            actor=row.user,
            action="auth.refresh_reused",
            target=row.user,
            payload={"family": str(row.family)},
            request=request,
        )
        raise RefreshTokenReused("This refresh token was already used; every token of this sign-in is revoked.")
    return TokenPair(access_token_issue(user=row.user, family=row.family), new_refresh, settings.JWT_ACCESS_SECONDS)


def token_revoke(*, request: HttpRequest, refresh: str) -> None:
    """Sign out an API client: revoke the refresh token's family and the access tokens it issued.

    Raises RefreshTokenInvalid for an unknown token.
    """
    row = RefreshToken.objects.select_related("user").filter(token_hash=_sha256(refresh or "")).first()
    if row is None:
        raise RefreshTokenInvalid("The refresh token is not known.")
    _revoke_family(row.family)
    audit.record(actor=row.user, action="auth.logout", target=row.user, payload={"channel": "api"}, request=request)


# --- API keys ---------------------------------------------------------------------------------------
def _parse_networks(allowed_ips: list[str]) -> list[str]:
    if len(allowed_ips) > MAX_ALLOWED_IPS:
        raise InvalidApiKeyInput(f"At most {MAX_ALLOWED_IPS} addresses or networks.", extra={"field": "allowed_ips"})
    networks = []
    for entry in allowed_ips:
        try:
            networks.append(str(ipaddress.ip_network(entry.strip(), strict=True)))
        except ValueError as exc:
            raise InvalidApiKeyInput(
                f"{entry!r} is not an IP address or CIDR network (such as 203.0.113.7 or 203.0.113.0/24).",
                extra={"field": "allowed_ips", "value": entry},
            ) from exc
    return networks


def api_key_create(
    *, user: User, name: str, scope: str, allowed_ips: list[str], request: HttpRequest | None = None
) -> tuple[ApiKey, str]:
    """Create an API key and return it with its secret, which is never shown again.

    Raises InvalidApiKeyInput for an empty name, an unknown scope or a malformed address, and
    ApiKeyScopeNotAllowed for a ``trade`` key asked by a user who may trade nowhere (only Compliance).
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidApiKeyInput("Give the key a name of 1 to 100 characters.", extra={"field": "name"})
    if scope not in ApiKeyScope.values:
        raise InvalidApiKeyInput(f"Scope must be one of {ApiKeyScope.values}.", extra={"field": "scope"})
    if scope == ApiKeyScope.TRADE and trades_nowhere(user=user):
        raise ApiKeyScopeNotAllowed(
            "A Compliance member reads and never trades: create a key with the read scope.", extra={"field": "scope"}
        )
    networks = _parse_networks(allowed_ips)
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        user=user, name=name, prefix=prefix, secret_hash=_sha256(secret), scope=scope, allowed_ips=networks
    )
    audit.record(
        actor=user,
        action="apikey.created",
        target=key,
        payload={"name": name, "scope": scope, "allowed_ips": networks},
        request=request,
    )
    return key, secret


def api_key_revoke(*, user: User, key_id: int, request: HttpRequest | None = None) -> ApiKey:
    """Revoke one of the user's API keys and return it. Raises ApiKeyNotFound for anyone else's key."""
    key = ApiKey.objects.filter(pk=key_id, user=user).first()
    if key is None:
        raise ApiKeyNotFound(f"API key {key_id} was not found.", extra={"key_id": key_id})
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db()
        audit.record(actor=user, action="apikey.revoked", target=key, payload={"name": key.name}, request=request)
    return key


def _denied(request: HttpRequest, actor, reason: str, raw: str, key: ApiKey | None = None) -> None:
    """Count the refusal (accounts.failures: audited at once if it is the source's first in the window)."""
    failure_record(
        request=request,
        action="apikey.denied",
        reason=reason,
        presented=raw,
        actor=actor or "anonymous",
        target=key,
        payload={"reason": reason, "path": request.path},
    )


def api_key_authenticate(*, request: HttpRequest, raw: str) -> ApiKey:
    """Return the active key for ``raw`` if the request may use it (refusals are audited).

    Raises ApiKeyInvalid (malformed, unknown or wrong secret, inactive user), ApiKeyRevoked and
    ApiKeyIpNotAllowed (the client address is outside the key's allow-list).
    """
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        _denied(request, None, "malformed", raw)
        raise ApiKeyInvalid("The API key is malformed; expected atk_<id>_<secret>.")
    key = ApiKey.objects.select_related("user").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _sha256(raw.strip())) or not key.user.is_active:
        _denied(request, None, "unknown", raw)
        raise ApiKeyInvalid("The API key is not valid.")
    if key.revoked_at is not None:
        _denied(request, key.user, "revoked", raw, key)
        raise ApiKeyRevoked("The API key was revoked.")
    if key.allowed_ips:
        address = client_ip(request)
        ip = ipaddress.ip_address(address) if address else None
        if ip is None or not any(ip in ipaddress.ip_network(net) for net in key.allowed_ips):
            _denied(request, key.user, "ip_not_allowed", raw, key)
            raise ApiKeyIpNotAllowed(
                f"Requests with this API key must come from its registered addresses, not {address}.",
                extra={"ip": address},
            )
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_WRITE_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
