"""Fixtures of the shared broker contract suite: for each family's kit, its local server, an account
of the trading world at the kit's broker, signed in through the family's own login against the server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from brokers.adapters import registry
from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerAccount, BrokerInstrument
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import session_secrets, session_start
from tests.brokers.contract.kits import KITS
from tests.trading_world import _fresh_trading_state, world  # noqa: F401  (the suite trades)


def pytest_generate_tests(metafunc):
    if "kit" in metafunc.fixturenames:
        metafunc.parametrize("kit", sorted(KITS), indirect=True)


@pytest.fixture
def kit(request):
    return KITS[request.param]()


@pytest.fixture
def server(kit, settings):
    running = kit.start_server()
    settings.BROKER_ENDPOINTS = {kit.broker: running.endpoints()}
    settings.BROKER_HTTP_READ_TIMEOUT = 1.0
    yield running
    running.stop()


@pytest.fixture
def account(world, kit, server):  # noqa: F811
    """An account of the world at the kit's broker, signed in by the family's login against the server;
    the world's equity (NSE:RELIANCE) mapped to the server's token and quoted at 1000."""
    account = BrokerAccount.objects.create(
        organisation=world.org, label=f"{kit.broker} main", broker=kit.broker, client_code=kit.client_code
    )
    broker_credentials_set(account=account, credentials=dict(kit.credentials))
    sign_in = kit.sign_in(account, server)
    session_start(
        account=account,
        secrets=sign_in.secrets,
        expires_at=max(sign_in.expires_at, timezone.now() + timedelta(hours=1)),
    )
    for permission in ("brokers.trade_brokeraccount", "brokers.view_brokeraccount"):
        assign_perm(permission, world.trader, account)
    map_equity(world, kit)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    yield account
    instrument_map_invalidate()


def map_equity(world, kit) -> None:  # noqa: F811
    BrokerInstrument.objects.update_or_create(
        broker=kit.family,
        instrument=world.equity,
        defaults={
            "token": kit.equity_token,
            "tradingsymbol": kit.equity_symbol,
            "exchange": kit.equity_exchange,
            "listed_at": timezone.now(),
        },
    )
    instrument_map_invalidate()


@pytest.fixture
def adapter(account):
    return registry.adapter_for(account)


@pytest.fixture
def session(account):
    return session_secrets(account)
