"""Fixtures of the Dhan family's tests: the local Dhan server and a Dhan account of the trading world
signed in at it, RELIANCE (the world's equity) in the Dhan mapping as NSE_EQ:2885."""

from __future__ import annotations

import pytest

from brokers.instrument_map import instrument_map_invalidate
from tests.families.dhan import server as ds
from tests.trading_world import _fresh_trading_state, world  # noqa: F401  (the account tests trade)


@pytest.fixture
def dhan_server():
    server = ds.DhanServer().start()
    server.hang_seconds = 3.0
    yield server
    server.stop()


@pytest.fixture
def dhan_endpoints(settings, dhan_server):
    settings.BROKER_ENDPOINTS = {"dhan": dhan_server.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    return dhan_server


def map_for_dhan(instrument, *, token: str) -> None:
    from django.utils import timezone

    from brokers.models import BrokerInstrument

    BrokerInstrument.objects.create(
        broker="dhan",
        instrument=instrument,
        token=token,
        tradingsymbol=instrument.tradingsymbol,
        exchange="NSE_EQ",
        listed_at=timezone.now(),
    )
    instrument_map_invalidate()


@pytest.fixture
def dhan_account(world, dhan_endpoints):  # noqa: F811
    from brokers.models import BrokerAccount
    from brokers.services.credentials import broker_credentials_set

    account = BrokerAccount.objects.create(
        organisation=world.org, label="Dhan", broker="dhan", client_code=ds.CLIENT_ID
    )
    broker_credentials_set(account=account, credentials={"pin": ds.PIN, "totp_secret": ds.TOTP_SECRET})
    map_for_dhan(world.equity, token="NSE_EQ:2885")
    yield account
    instrument_map_invalidate()


@pytest.fixture
def dhan(dhan_account):
    """The account's adapter, signed in at the local server through its TOTP login."""
    from families.dhan.adapter import DhanAdapter

    sign_in = DhanAdapter.login_direct(dhan_account)
    return DhanAdapter.for_account(dhan_account, sign_in.secrets)
