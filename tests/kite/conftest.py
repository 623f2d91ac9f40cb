"""Fixtures for the Kite client: a fake Kite server on loopback and a client pointed at it."""

from __future__ import annotations

import httpx
import pytest

from brokers.instrument_map import instrument_map_invalidate
from brokers.rate_limits import LocalRateLimiter
from kite.client import KiteClient
from tests.kite import fake_kite as fk
from tests.kite.mapping import map_for_kite


class FakeClock:
    """Monotonic time that only moves when a rate limiter sleeps: limits apply, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_kite():
    fake = fk.FakeKite().start()
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> LocalRateLimiter:
    return LocalRateLimiter(clock=clock.time, sleep=clock.sleep)


@pytest.fixture(scope="session")
def http():
    """One pooled client for the run (building one loads the CA bundle, which is slow)."""
    client = httpx.Client()
    yield client
    client.close()


@pytest.fixture
def make_client(fake_kite, limiter, http):
    def make(access_token: str | None = fk.ACCESS_TOKEN, *, read: float = 2.0) -> KiteClient:
        timeout = httpx.Timeout(connect=1.0, read=read, write=1.0, pool=1.0)
        return KiteClient(fk.API_KEY, access_token, root=fake_kite.url, timeout=timeout, limiter=limiter, http=http)

    return make


@pytest.fixture
def kite(make_client) -> KiteClient:
    return make_client()


from tests.trading_world import _fresh_trading_state, world  # noqa: E402, F401  (the order tests trade)


@pytest.fixture
def kite_account(world, settings, fake_kite):  # noqa: F811
    """A Kite account of the trading world with a live session at the local Kite server: the trader
    trades it, the viewer views it; RELIANCE (the world's equity) quoted at 1000."""
    from datetime import timedelta

    from django.utils import timezone
    from guardian.shortcuts import assign_perm

    from brokers.models import BrokerAccount
    from brokers.services.credentials import broker_credentials_set
    from brokers.services.sessions import session_start

    settings.KITE_API_ROOT = fake_kite.url
    account = BrokerAccount.objects.create(organisation=world.org, label="Zerodha", broker="kite", client_code="AB1234")
    broker_credentials_set(account=account, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
    session_start(
        account=account, secrets={"access_token": fk.ACCESS_TOKEN}, expires_at=timezone.now() + timedelta(hours=8)
    )
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.viewer, account)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    map_for_kite(world.equity, token=738561)  # the local Kite server's token for NSE:RELIANCE
    yield account
    instrument_map_invalidate()


from tests.task_capture import tasks_recorded_not_sent  # noqa: E402, F401
