"""Fixtures for the Fyers family's own tests: the local Fyers server, and an account of the trading
world signed in at it with the world's equity in the Fyers mapping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.instrument_map import instrument_map_invalidate
from tests.families.fyers import server as fake
from tests.task_capture import tasks_recorded_not_sent  # noqa: F401
from tests.trading_world import _fresh_trading_state, world  # noqa: F401


@pytest.fixture
def fyers_server(settings):
    running = fake.FyersServer()
    settings.BROKER_ENDPOINTS = {"fyers": running.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    yield running
    running.stop()


@pytest.fixture
def fyers_account(world, fyers_server):  # noqa: F811
    from brokers.models import BrokerAccount, BrokerInstrument
    from brokers.services.credentials import broker_credentials_set
    from brokers.services.sessions import session_start

    account = BrokerAccount.objects.create(
        organisation=world.org, label="Fyers", broker="fyers", client_code=fake.FY_ID
    )
    broker_credentials_set(
        account=account,
        credentials={"app_id": fake.APP_ID, "secret_key": fake.SECRET_KEY, "redirect_uri": fake.REDIRECT_URI},
    )
    session_start(
        account=account, secrets={"access_token": fake.ACCESS_TOKEN}, expires_at=timezone.now() + timedelta(hours=8)
    )
    BrokerInstrument.objects.create(
        broker="fyers",
        instrument=world.equity,
        token=fake.MARKET["NSE:RELIANCE-EQ"][0],
        tradingsymbol="NSE:RELIANCE-EQ",
        exchange="NSE_CM",
        listed_at=timezone.now(),
    )
    instrument_map_invalidate()
    yield account
    instrument_map_invalidate()
