"""Paper and live never mix: an account's broker (its mode) is fixed at creation, and nothing a paper
account does reaches a network adapter, on every order path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters import registry
from brokers.errors import BrokerAccountModeFixed
from brokers.models import BrokerAccount
from orders.services import (
    cancel_all,
    cancel_order,
    kill_switch_engage,
    modify_order,
    place_basket,
    place_order,
    square_off_all,
)
from paper.adapter import PaperAdapter

pytestmark = pytest.mark.django_db


def test_an_accounts_broker_is_fixed_at_creation(world):
    account = BrokerAccount.objects.get(pk=world.account.pk)
    account.broker = "kite"
    with pytest.raises(BrokerAccountModeFixed):
        account.save()
    account.label = "Renamed"
    account.broker = "paper"
    account.save()  # anything else may change
    assert BrokerAccount.objects.get(pk=account.pk).broker == "paper"


def test_the_admin_shows_an_existing_accounts_broker_read_only(world, rf):
    from django.contrib.admin.sites import site

    model_admin = site._registry[BrokerAccount]
    assert "broker" in model_admin.get_readonly_fields(rf.get("/"), world.account)
    assert "broker" not in model_admin.get_readonly_fields(rf.get("/"), None)


def test_no_order_path_of_a_paper_account_reaches_a_network_adapter(world, monkeypatch):
    made: list[type] = []
    adapter_for = registry.adapter_for

    def watched(account):
        adapter = adapter_for(account)
        made.append(type(adapter))
        return adapter

    def refuse(self, adapter):
        raise AssertionError(f"a network adapter was made for {adapter}")

    for module in ("placement", "amendments", "broker_updates", "broker_failures", "reconciliation"):
        monkeypatch.setattr(f"orders.services.{module}.adapter_for", watched)
    monkeypatch.setattr(registry._OverTheNetwork, "__init__", refuse)

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    resting = place_order(
        actor=world.trader, account=world.account, request=world.request(world.equity, price=Decimal(990)), source="api"
    )
    modify_order(actor=world.trader, order=resting, price=Decimal(991))
    cancel_order(actor=world.trader, order=resting)
    market = world.request(world.equity, order_type="MARKET")
    place_basket(actor=world.trader, account=world.account, requests=[market, market], source="api")
    place_order(
        actor=world.trader, account=world.account, request=world.request(world.equity, price=Decimal(980)), source="api"
    )
    cancel_all(actor=world.trader, account=world.account)
    square_off_all(actor=world.trader, account=world.account)
    place_order(
        actor=world.trader, account=world.account, request=world.request(world.equity, price=Decimal(985)), source="api"
    )
    kill_switch_engage(actor=world.admin, scope="account", target_id=world.account.pk, reason="drill")
    assert made and set(made) == {PaperAdapter}
