"""Fixtures for Angel One's own tests: the local SmartAPI server, and an account of the trading world
at Angel One signed in against it with RELIANCE mapped to Angel's NSE token 2885."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.adapters import registry
from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerAccount, BrokerInstrument
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import session_start
from tests.families.angel import server as angel
from tests.trading_world import _fresh_trading_state, world  # noqa: F401


@pytest.fixture
def angel_server(settings):
    running = angel.AngelServer(hang_seconds=2.0).start()
    settings.BROKER_ENDPOINTS = {"angelone": running.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    yield running
    running.stop()


def make_account(world, **credentials) -> BrokerAccount:  # noqa: F811
    account = BrokerAccount.objects.create(
        organisation=world.org, label="Angel One", broker="angelone", client_code=angel.CLIENT_CODE
    )
    broker_credentials_set(
        account=account,
        credentials=credentials or {"api_key": angel.API_KEY, "pin": angel.PIN, "totp_secret": angel.TOTP_SECRET},
    )
    return account


@pytest.fixture
def angel_account(world, angel_server):  # noqa: F811
    account = make_account(world)
    sign_in = registry.family("angelone").login_direct(account)
    session_start(account=account, secrets=sign_in.secrets, expires_at=timezone.now() + timedelta(hours=2))
    BrokerInstrument.objects.create(
        broker="angel",
        instrument=world.equity,
        token="NSE:2885",
        tradingsymbol="RELIANCE-EQ",
        exchange="NSE",
        listed_at=timezone.now(),
    )
    instrument_map_invalidate()
    yield account
    instrument_map_invalidate()


@pytest.fixture
def adapter(angel_account):
    return registry.adapter_for(angel_account)
