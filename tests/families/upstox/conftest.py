"""Fixtures for Upstox's own tests: its local server, and an account signed in against it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerAccount, BrokerInstrument
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import session_start
from tests.families.upstox import server as up
from tests.families.upstox.kit import UpstoxKit
from tests.trading_world import _fresh_trading_state, world  # noqa: F401


@pytest.fixture
def server(settings):
    running = UpstoxKit().start_server()
    settings.BROKER_ENDPOINTS = {"upstox": running.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    yield running
    running.stop()


@pytest.fixture
def account(world, server):  # noqa: F811
    account = BrokerAccount.objects.create(
        organisation=world.org, label="Upstox", broker="upstox", client_code=up.USER_ID
    )
    broker_credentials_set(account=account, credentials=dict(UpstoxKit.credentials))
    session_start(
        account=account, secrets={"access_token": up.ACCESS_TOKEN}, expires_at=timezone.now() + timedelta(hours=4)
    )
    BrokerInstrument.objects.update_or_create(
        broker="upstox",
        instrument=world.equity,
        defaults={
            "token": up.EQUITY_KEY,
            "tradingsymbol": "RELIANCE",
            "exchange": "NSE_EQ",
            "listed_at": timezone.now(),
        },
    )
    instrument_map_invalidate()
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    yield account
    instrument_map_invalidate()
