"""The trading world plus strategy pieces: a registered test strategy, a definition, paper and live
accounts, deployments over them, and intents built directly (as the engine would emit them)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from guardian.shortcuts import assign_perm
from pydantic import Field

from brokers.models import BrokerAccount
from strategies.contract import Context, Intent, Params, Strategy
from strategies.registry import register
from strategies.services import deployment_create, deployment_start, strategy_create


class BuyerParams(Params):
    quantity: int = Field(default=1, ge=1, le=1000)
    symbol: str = "RELIANCE"


@register
class Buyer(Strategy):
    """Buys its quantity on every bar (enough to exercise the services)."""

    name = "test_buyer"
    Params = BuyerParams

    def on_bar(self, ctx: Context, bar) -> None:
        ctx.buy("long", bar.instrument_id, self.params.quantity)


def paper_account(world, label: str, code: str) -> BrokerAccount:
    account = BrokerAccount.objects.create(organisation=world.org, label=label, broker="paper", client_code=code)
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.trader, account)
    return account


def live_account(world, label: str = "Kite", code: str = "K1") -> BrokerAccount:
    account = BrokerAccount.objects.create(organisation=world.org, label=label, broker="kite", client_code=code)
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.trader, account)
    return account


def intent(instrument, side="BUY", quantity=1, *, key="k1", leg="long", **kwargs) -> Intent:
    return Intent(leg=leg, instrument_id=instrument.pk, side=side, quantity=quantity, key=key, **kwargs)


@pytest.fixture
def definition(world):
    return strategy_create(
        actor=world.trader, organisation=world.org, name="Buyer", kind="test_buyer", params={"quantity": 1}
    )


@pytest.fixture
def make_deployment(world, definition):
    """``make_deployment(accounts=[(account, multiplier)], mode="paper", start=True, **settings)``."""

    def make(accounts=None, *, mode="paper", start=True, actor=None, **settings):
        deployment = deployment_create(
            actor=actor or world.trader,
            definition=definition,
            name="Buyer on paper",
            mode=mode,
            accounts=accounts or [(world.account, 1)],
            **settings,
        )
        if start:
            deployment = deployment_start(actor=actor or world.trader, deployment=deployment)
        return deployment

    return make


@pytest.fixture
def market(world):
    """A quote for the equity, so market orders fill on the paper exchange at the ask."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    return Decimal("1000.05")
