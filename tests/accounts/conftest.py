"""Helpers for account tests: users with a real Argon2 hash (computed once) and signed-in clients."""

from __future__ import annotations

import functools
import os

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership, SealedTOTPDevice, User
from accounts.services import sync_role_groups
from tests.otp_session import login_with_otp

PASSWORD = "long-password-123"


@functools.cache
def password_hash() -> str:
    # Argon2 at the production parameters costs ~100 MiB and a noticeable fraction of a second;
    # hashing once and reusing the result keeps the suite fast without switching hashers.
    return make_password(PASSWORD)


def make_user(username: str, *, organisation=None, role=None, device: bool = True) -> User:
    user = User.objects.create(username=username, password=password_hash())
    if organisation is not None:
        Membership.objects.create(user=user, organisation=organisation, role=role)
        sync_role_groups(user=user)
    if device:
        SealedTOTPDevice.objects.create(user=user, name="phone", confirmed=True)  # as enrolment makes it: sealed
    return user


def totp_code(device: TOTPDevice, offset_steps: int = 0) -> str:
    """The device's code now (or ``offset_steps`` away), as the user's authenticator app shows it."""
    seed = SealedTOTPDevice.objects.get(pk=device.pk).bin_key  # the app holds the seed; the row holds it sealed
    totp = TOTP(seed, device.step, device.t0, device.digits)  # the real clock, not the learnt drift
    totp.time += offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def password_only_client(user: User, **defaults) -> Client:
    client = Client(**defaults)
    client.force_login(user)
    return client


def verified_client(user: User, **defaults) -> Client:
    """A client whose session passed both factors (as after otp-verify)."""
    return login_with_otp(Client(**defaults), user)


@pytest.fixture
def user_factory(db):
    return make_user


@pytest.fixture(autouse=True)
def _own_failure_counters(settings):
    """Each test counts failed credentials under its own key prefix (accounts.failures), so one test's
    failures from 127.0.0.1 never make another's first failure a repeat, nor reach the limit."""
    import uuid

    prefix = settings.AUTH_FAILURE_KEY_PREFIX = f"test-authfail:{uuid.uuid4().hex}"
    yield
    url = os.environ.get("REDIS_URL")  # the suite's Redis, whatever a test pointed the limiter at
    if url:  # the counters of windows a test left open
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            for key in client.scan_iter(match=f"{prefix}:*"):
                client.delete(key)
        except redis.RedisError:
            pass
