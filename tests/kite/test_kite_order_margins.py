"""Margin before placing on a Kite account: the ticket's and a basket's margin come from Kite's
order-margins and basket-margins APIs (the local Kite server), sent as Kite's JSON orders."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from brokers.adapters.base import BrokerRejected
from brokers.adapters.registry import adapter_for
from orders.preview import order_preview

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_kite_family_declares_an_order_margins_api(kite_account):
    assert adapter_for(kite_account).capabilities.margins


def test_one_order_is_priced_by_kites_order_margins_api(world, kite_account, fake_kite):
    request = world.request(world.equity, quantity=10, product="MIS", price=Decimal("990.5"))
    preview = order_preview(account=kite_account, actor=world.trader, requests=[request])
    assert (preview.basis, preview.margin) == ("broker", Decimal("1981.00"))  # 10 x 990.5 x 20 %, by the server
    sent = fake_kite.last("POST", "/margins/orders")
    assert sent.headers["content-type"].startswith("application/json")
    assert json.loads(sent.body) == [
        {
            "exchange": "NSE",
            "tradingsymbol": "RELIANCE",
            "transaction_type": "BUY",
            "variety": "regular",
            "product": "MIS",
            "order_type": "LIMIT",
            "quantity": 10,
            "price": 990.5,
            "trigger_price": 0,
        }
    ]


def test_a_basket_is_priced_by_kites_basket_api_with_its_hedge(world, kite_account, fake_kite):
    buy = world.request(world.equity, quantity=10, product="MIS", price=Decimal("990"))
    sell = replace(buy, side="SELL", price=Decimal("1010"))
    preview = order_preview(account=kite_account, actor=world.trader, requests=[buy, sell])
    assert preview.basis == "broker" and preview.hedge
    assert preview.margin == Decimal("2020.00")  # the server's hedge: the larger side, not 1980 + 2020
    sent = fake_kite.last("POST", "/margins/basket")
    assert sent.query_dict == {"consider_positions": "true"}
    assert [o["transaction_type"] for o in json.loads(sent.body)] == ["BUY", "SELL"]


def test_a_market_order_is_sent_without_a_price(world, kite_account, fake_kite):
    request = world.request(world.equity, quantity=2, order_type="MARKET", product="CNC")
    order_preview(account=kite_account, actor=world.trader, requests=[request])
    assert json.loads(fake_kite.last("POST", "/margins/orders").body)[0]["price"] == 0


def test_an_instrument_kite_does_not_list_is_refused_before_sending(world, kite_account, fake_kite):
    request = world.request(world.future, quantity=75, product="NRML", price=Decimal("20000"))
    with pytest.raises(BrokerRejected) as refused:
        order_preview(account=kite_account, actor=world.trader, requests=[request])
    assert refused.value.code == "broker_instrument_not_mapped"
    assert fake_kite.count("POST", "/margins/orders") == 0


@pytest.mark.parametrize("total", [None, "abc", -5, True, "NaN", [1]])
def test_a_malformed_answer_is_a_clear_broker_error(world, kite_account, fake_kite, monkeypatch, total):
    monkeypatch.setattr(type(fake_kite), "_order_margins", lambda self, recorded: [{"total": total}])
    request = world.request(world.equity, quantity=10, product="MIS", price=Decimal("990"))
    with pytest.raises(Exception) as failed:
        order_preview(account=kite_account, actor=world.trader, requests=[request])
    assert getattr(failed.value, "code", "") == "broker_unavailable"


def test_the_ticket_shows_kites_margin(world, kite_account, fake_kite, client, otp_login):
    otp_login(client, world.trader)
    fields = {"instrument": world.equity.pk, "side": "BUY", "order_type": "LIMIT", "product": "MIS", "lots": "10"}
    response = client.get(
        f"/trading/{kite_account.pk}/ticket/preview/", fields | {"price": "990.5"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200 and 'data-value="1981.00"' in html and "The broker's margin" in html
