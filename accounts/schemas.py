from __future__ import annotations

from datetime import datetime

from ninja import Schema


class TokenObtainIn(Schema):
    username: str
    password: str
    otp: str


class RefreshIn(Schema):
    refresh_token: str


class TokenPairOut(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class MembershipOut(Schema):
    organisation: str
    role: str


class MeOut(Schema):
    id: int
    username: str
    scope: str
    memberships: list[MembershipOut]


class BrokerAccountOut(Schema):
    id: int
    organisation: str
    label: str
    broker: str
    client_code: str
    is_active: bool


class ApiKeyOut(Schema):
    id: int
    name: str
    scope: str
    allowed_ips: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
