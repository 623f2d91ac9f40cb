"""Fixtures of the XTS family's own tests: the local XTS server, and an account of the trading world at
the registry's XTS broker ("iifl") pointed at it."""

from __future__ import annotations

import pytest

from tests.families.xts import server as xs
from tests.trading_world import _fresh_trading_state, world  # noqa: F401


@pytest.fixture
def xts(settings):
    running = xs.XtsServer().start()
    settings.BROKER_ENDPOINTS = {"iifl": running.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    yield running
    running.stop()  # fails the test if any request was out of format


@pytest.fixture
def xts_account(world, xts):  # noqa: F811
    from brokers.models import BrokerAccount
    from brokers.services.credentials import broker_credentials_set
    from tests.families.xts.kit import XtsKit

    account = BrokerAccount.objects.create(organisation=world.org, label="IIFL", broker="iifl", client_code=xs.USER_ID)
    broker_credentials_set(account=account, credentials=dict(XtsKit.credentials))
    return account
