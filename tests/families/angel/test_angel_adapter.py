"""AngelAdapter against the local SmartAPI server, which checks every request it receives against the
documented format: the server's ``violations`` stay empty."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from brokers.adapters import registry
from brokers.adapters.base import (
    BrokerModifyRequest,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerRejected,
    BrokerSessionExpired,
)
from brokers.families.stream import StreamFeed
from brokers.services.sessions import session_secrets
from families.angel.adapter import AngelAdapter
from tests.families.angel import server as angel
from tests.families.angel.conftest import make_account

pytestmark = pytest.mark.django_db(transaction=True)


def _request(world, tag: str, **overrides) -> BrokerOrderRequest:
    fields = {
        "tag": tag,
        "instrument_id": world.equity.pk,
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "validity": "DAY",
        "instrument_type": "EQ",
        "tick_size": Decimal("0.05"),
        "price": Decimal("990"),
    }
    fields.update(overrides)
    return BrokerOrderRequest(**fields)


def test_the_sign_in_sends_client_code_pin_and_the_current_totp(world, angel_server):
    account = make_account(world)
    sign_in = AngelAdapter.login_direct(account)
    assert sign_in.secrets == {"jwt_token": angel.JWT, "refresh_token": angel.REFRESH, "feed_token": angel.FEED}
    assert sign_in.broker_user == angel.CLIENT_CODE and sign_in.expires_at.astimezone(angel.IST).hour == 0
    login = angel_server.last("login")
    assert login.body["clientcode"] == angel.CLIENT_CODE and login.body["password"] == angel.PIN
    assert login.body["totp"] == angel.totp(angel.TOTP_SECRET, time.time()) or login.body["totp"] == angel.totp(
        angel.TOTP_SECRET, time.time() - 30
    )
    assert login.headers["x-privatekey"] == angel.API_KEY and "authorization" not in login.headers
    assert angel_server.violations == []


def test_a_wrong_pin_is_angels_refusal(world, angel_server):
    account = make_account(world, api_key=angel.API_KEY, pin="0000", totp_secret=angel.TOTP_SECRET)
    with pytest.raises(BrokerRejected) as refused:
        AngelAdapter.login_direct(account)
    assert "Invalid clientcode or password" in refused.value.message and angel_server.violations == []


@pytest.mark.parametrize(
    "credentials",
    [
        {"api_key": angel.API_KEY, "pin": angel.PIN},
        {"api_key": "", "pin": angel.PIN, "totp_secret": angel.TOTP_SECRET},
        {"api_key": angel.API_KEY, "pin": angel.PIN, "totp_secret": "not base32 !"},
    ],
)
def test_missing_or_malformed_credentials_are_refused_before_sending(world, angel_server, credentials):
    account = make_account(world, **credentials)
    with pytest.raises(ValueError):
        AngelAdapter.login_direct(account)
    assert angel_server.requests == []


def test_orders_of_every_type_and_variety_are_accepted_as_sent(world, adapter, angel_server):
    placed = [
        adapter.place_order(_request(world, "LIMIT1")),
        adapter.place_order(_request(world, "SL1", order_type="SL", trigger_price=Decimal("995"), side="SELL")),
        adapter.place_order(_request(world, "SLM1", order_type="SL-M", price=None, trigger_price=Decimal("1010"))),
        adapter.place_order(_request(world, "AMO1", variety="amo", product="CNC")),
        adapter.place_order(_request(world, "MKT1", order_type="MARKET", price=None, validity="IOC")),
    ]
    assert angel_server.violations == []
    assert [angel_server.orders[p.broker_order_id]["variety"] for p in placed] == [
        "NORMAL",
        "STOPLOSS",
        "STOPLOSS",
        "AMO",
        "NORMAL",
    ]
    book = {order.tag: order for order in adapter.order_book()}
    assert book["SL1"].status == "TRIGGER_PENDING" and book["SL1"].trigger_price == Decimal("995")
    assert book["MKT1"].status == "FILLED" and book["MKT1"].fills and book["MKT1"].fills[0].quantity == 10


def test_a_stop_loss_order_is_modified_and_cancelled_with_its_own_variety(world, adapter, angel_server):
    result = adapter.place_order(_request(world, "SL2", order_type="SL", trigger_price=Decimal("995"), side="SELL"))
    adapter.modify_order(
        broker_order_id=result.broker_order_id, change=BrokerModifyRequest(trigger_price=Decimal("994"))
    )
    assert angel_server.last("modify").body["variety"] == "STOPLOSS"
    assert angel_server.last("modify").body["triggerprice"] == "994"
    adapter.cancel_order(broker_order_id=result.broker_order_id)
    assert angel_server.last("cancel").body == {"variety": "STOPLOSS", "orderid": result.broker_order_id}
    assert angel_server.orders[result.broker_order_id]["status"] == "cancelled"
    assert angel_server.violations == []


def test_changing_an_order_angel_does_not_have_is_not_found(adapter, angel_server):
    with pytest.raises(BrokerOrderNotFound):
        adapter.modify_order(broker_order_id="261206999999999", change=BrokerModifyRequest(quantity=1))
    with pytest.raises(BrokerOrderNotFound):
        adapter.cancel_order(broker_order_id="261206999999998")
    assert angel_server.violations == []


def test_funds_holdings_and_quotes_are_read_as_typed_values(world, adapter, angel_server):
    funds = adapter.funds()
    assert (funds.cash, funds.margin_used, funds.available) == (
        Decimal("100000.00"),
        Decimal("149.75"),
        Decimal("99850.25"),
    )
    holding = adapter.holdings()[0]
    assert (holding.instrument_id, holding.quantity, holding.average_price) == (world.equity.pk, 5, Decimal("2500.5"))
    quote = adapter.quotes([world.equity.pk])[world.equity.pk]
    assert quote.ltp == Decimal("1000") and quote.bid == Decimal("999.95") and quote.ask == Decimal("1000.05")
    assert angel_server.last("quote").body == {"mode": "FULL", "exchangeTokens": {"NSE": ["2885"]}}
    assert angel_server.violations == []


def test_a_dead_token_ends_the_accounts_session(angel_account, angel_server):
    adapter = registry.adapter_for(angel_account)
    angel_server.fail_next("funds", "session_expired")
    with pytest.raises(BrokerSessionExpired):
        adapter.funds()
    assert session_secrets(angel_account) is None


def test_the_market_stream_subscribes_as_documented_and_decodes_ticks(world, angel_account, angel_server):
    session = session_secrets(angel_account)
    quotes: list = []
    feed = StreamFeed(AngelAdapter.market_stream(angel_account, session), on_quotes=quotes.extend)
    feed.subscribe([world.equity])
    feed.start()
    try:
        deadline = time.monotonic() + 5
        while not angel_server.subscriptions and time.monotonic() < deadline:
            time.sleep(0.02)
        assert angel_server.subscriptions[0]["params"] == {
            "mode": 3,
            "tokenList": [{"exchangeType": 1, "tokens": ["2885"]}],
        }
        angel_server.push_tick("NSE:2885", Decimal("1001.35"))
        while not quotes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert quotes[-1].instrument_id == world.equity.pk and quotes[-1].ltp == Decimal("1001.35")
        assert quotes[-1].bid == Decimal("1001.30") and quotes[-1].ask == Decimal("1001.40")
    finally:
        feed.stop()
    assert angel_server.violations == []
