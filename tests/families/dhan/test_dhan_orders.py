"""The Dhan adapter against the local Dhan server: sign-in, orders, reads, and every request in
Dhan's documented format (the server's ``violations`` stay empty)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters.base import (
    BrokerModifyRequest,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from tests.brokers.contract.kit import REJECT_MESSAGE
from tests.families.dhan import server as ds

pytestmark = pytest.mark.django_db(transaction=True)


def _request(world, **changes) -> BrokerOrderRequest:
    values = dict(
        tag="T1A2B3C4D5",
        instrument_id=world.equity.pk,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        quantity=5,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal("2890.05"),
    )
    values.update(changes)
    return BrokerOrderRequest(**values)


def test_the_totp_sign_in_gets_the_day_token(dhan_account, dhan_server):
    from families.dhan.adapter import DhanAdapter

    sign_in = DhanAdapter.login_direct(dhan_account)
    assert sign_in.secrets == {"access_token": ds.ACCESS_TOKEN} and sign_in.broker_user == ds.CLIENT_ID
    login = dhan_server.last("login")
    assert login.query["dhanClientId"] == ds.CLIENT_ID and login.query["pin"] == ds.PIN
    assert dhan_server.violations == []


def test_a_stored_token_is_checked_with_the_profile(dhan_account, dhan_server):
    from brokers.services.credentials import broker_credentials_set
    from families.dhan.adapter import DhanAdapter

    broker_credentials_set(account=dhan_account, credentials={"access_token": ds.ACCESS_TOKEN})
    sign_in = DhanAdapter.login_direct(dhan_account)
    assert sign_in.secrets["access_token"] == ds.ACCESS_TOKEN
    assert dhan_server.last("profile").headers["access-token"] == ds.ACCESS_TOKEN
    dhan_server.token_valid = False
    with pytest.raises(BrokerSessionExpired):
        DhanAdapter.login_direct(dhan_account)


def test_missing_credentials_are_refused_before_sending(dhan_account, dhan_server):
    from brokers.services.credentials import broker_credentials_set
    from families.dhan.adapter import DhanAdapter

    broker_credentials_set(account=dhan_account, credentials={"pin": "12"})
    with pytest.raises(ValueError):
        DhanAdapter.login_direct(dhan_account)
    assert dhan_server.requests == []


def test_a_limit_order_rests_is_modified_and_cancelled(world, dhan, dhan_server):
    placed = dhan.place_order(_request(world))
    assert placed.status == "OPEN"
    body = dhan_server.last("place").body
    assert body["correlationId"] == "T1A2B3C4D5" and body["securityId"] == "2885"
    assert body["exchangeSegment"] == "NSE_EQ" and body["productType"] == "INTRADAY"
    assert body["price"] == Decimal("2890.05") and body["dhanClientId"] == ds.CLIENT_ID
    dhan.modify_order(broker_order_id=placed.broker_order_id, change=BrokerModifyRequest(price=Decimal("2891")))
    assert dhan_server.last("modify").body["price"] == Decimal("2891")
    (order,) = dhan.order_book()
    assert (order.tag, order.status, order.price) == ("T1A2B3C4D5", "OPEN", Decimal("2891"))
    dhan.cancel_order(broker_order_id=placed.broker_order_id)
    assert dhan.order_by_tag("T1A2B3C4D5").status == "CANCELLED"
    assert dhan_server.violations == []


def test_a_market_order_fills_with_its_trade(world, dhan, dhan_server):
    placed = dhan.place_order(_request(world, order_type="MARKET", price=None))
    assert dhan_server.last("place").body["price"] == 0
    order = dhan.order_by_tag("T1A2B3C4D5")
    assert order.status == "FILLED" and order.filled_quantity == 5
    (fill,) = order.fills
    assert fill.price == Decimal("2900.1") and fill.broker_order_id == placed.broker_order_id and fill.exchange == "NSE"
    (position,) = dhan.positions()
    assert (position.instrument_id, position.product, position.net_quantity) == (world.equity.pk, "MIS", 5)
    assert dhan_server.violations == []


def test_a_stop_order_is_trigger_pending(world, dhan, dhan_server):
    dhan.place_order(_request(world, order_type="SL", trigger_price=Decimal("2895"), price=Decimal("2896")))
    assert dhan_server.last("place").body["orderType"] == "STOP_LOSS"
    assert dhan.order_by_tag("T1A2B3C4D5").status == "TRIGGER_PENDING"


def test_reads_holdings_funds_and_quotes(world, dhan, dhan_server):
    (holding,) = dhan.holdings()
    assert (holding.instrument_id, holding.quantity, holding.average_price) == (world.equity.pk, 4, Decimal("2450.75"))
    funds = dhan.funds()
    assert (funds.cash, funds.margin_used, funds.available) == (
        Decimal("245431.6"),
        Decimal("145706.55"),
        Decimal("99725.05"),
    )
    quote = dhan.quotes([world.equity.pk])[world.equity.pk]
    assert quote.ltp == Decimal("2900.1") and quote.bids[0].quantity == 10
    assert dhan_server.last("quote").body == {"dhanClientId": ds.CLIENT_ID, "NSE_EQ": [2885]}
    assert dhan_server.violations == []


def test_an_unmapped_instrument_is_refused_unsent(world, dhan, dhan_server):
    with pytest.raises(BrokerRejected) as caught:
        dhan.place_order(_request(world, instrument_id=world.equity.pk + 999))
    assert caught.value.code == "broker_instrument_not_mapped"
    assert dhan_server.calls("place") == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http_500", BrokerUnavailable),
        ("timeout", BrokerUnavailable),
        ("malformed", BrokerUnavailable),
        ("truncated", BrokerUnavailable),
        ("rate_limited", BrokerRateLimited),
        ("session_expired", BrokerSessionExpired),
        ("rejected", BrokerRejected),
    ],
)
def test_each_fault_of_placing_is_its_typed_error(world, dhan, dhan_server, fault, error):
    dhan_server.fail_next("place", fault)
    with pytest.raises(error) as caught:
        dhan.place_order(_request(world))
    if fault == "rejected":
        assert caught.value.message == REJECT_MESSAGE


def test_cancelling_an_unknown_order_is_order_not_found(dhan, dhan_server):
    with pytest.raises(BrokerOrderNotFound):
        dhan.cancel_order(broker_order_id="999")


def test_an_order_dhan_refuses_is_rejected_with_dhans_message(world, dhan_account, dhan_server):
    from datetime import timedelta

    from django.utils import timezone
    from guardian.shortcuts import assign_perm

    from brokers.services.sessions import session_start
    from families.dhan.adapter import DhanAdapter
    from orders.services import place_order
    from orders.states import Status

    sign_in = DhanAdapter.login_direct(dhan_account)
    session_start(account=dhan_account, secrets=sign_in.secrets, expires_at=timezone.now() + timedelta(hours=1))
    assign_perm("brokers.trade_brokeraccount", world.trader, dhan_account)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    dhan_server.fail_next("place", "rejected")
    order = place_order(
        actor=world.trader,
        account=dhan_account,
        request=world.request(world.equity, price=Decimal("990")),
        source="api",
    )
    order.refresh_from_db()
    assert order.status == Status.REJECTED and REJECT_MESSAGE in order.message
