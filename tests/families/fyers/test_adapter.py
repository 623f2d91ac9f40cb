"""The Fyers adapter against the local Fyers server: the redirect sign-in and its variants, the books
read back into our terms, refusals before sending, and a dead session ending the account's session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.utils import timezone

from brokers.adapters import registry
from brokers.adapters.base import (
    BrokerModifyRequest,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerRejected,
    BrokerSessionExpired,
)
from brokers.models import BrokerSession
from families.fyers.adapter import FyersAdapter, jwt_claims
from tests.families.fyers import server as fake

pytestmark = pytest.mark.django_db


def _request(world, **terms) -> BrokerOrderRequest:
    base = dict(
        tag="a1b2c3d4e5f6a7b8c9d0",
        instrument_id=world.equity.pk,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        quantity=10,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal("990"),
    )
    return BrokerOrderRequest(**{**base, **terms})


def test_the_login_page_is_fyers_generate_authcode_for_the_accounts_app(fyers_account, fyers_server):
    url = urlsplit(FyersAdapter.login_start(fyers_account, state="s1"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fyers_server.url}/generate-authcode"
    assert dict(parse_qsl(url.query)) == {
        "client_id": fake.APP_ID,
        "redirect_uri": fake.REDIRECT_URI,
        "response_type": "code",
        "state": "s1",
    }


def test_the_auth_code_becomes_the_days_session_until_the_tokens_expiry(fyers_account, fyers_server):
    sign_in = FyersAdapter.login_finish(fyers_account, {"s": "ok", "code": "200", "auth_code": fake.AUTH_CODE})
    assert sign_in.secrets == {"access_token": fake.ACCESS_TOKEN, "refresh_token": fake.REFRESH_TOKEN}
    assert sign_in.expires_at == datetime.fromtimestamp(jwt_claims(fake.ACCESS_TOKEN)["exp"], UTC)
    assert sign_in.broker_user == fake.FY_ID
    assert fyers_server.last("login").body["grant_type"] == "authorization_code"


@pytest.mark.parametrize(
    "params",
    [
        {"s": "error", "auth_code": fake.AUTH_CODE},
        {"s": "ok"},
        {"auth_code": "bad code with spaces"},
        {"auth_code": ""},
    ],
)
def test_a_redirect_that_is_not_a_completed_sign_in_is_refused_before_calling_fyers(
    fyers_account, fyers_server, params
):
    with pytest.raises(ValueError):
        FyersAdapter.login_finish(fyers_account, params)
    assert not fyers_server.requests


def test_a_wrong_app_secret_is_fyers_refusal_of_the_app_hash(fyers_account, fyers_server):
    from brokers.services.credentials import broker_credentials_set

    broker_credentials_set(
        account=fyers_account,
        credentials={"app_id": fake.APP_ID, "secret_key": "WRONGSECRET", "redirect_uri": fake.REDIRECT_URI},
    )
    with pytest.raises(BrokerRejected) as refused:
        FyersAdapter.login_finish(fyers_account, {"auth_code": fake.AUTH_CODE})
    assert "sha256" in refused.value.message and refused.value.extra["fyers_code"] == -371


def test_a_token_without_an_hsm_key_opens_no_market_feed(fyers_account):
    with pytest.raises(BrokerSessionExpired):
        FyersAdapter.market_stream(fyers_account, {"access_token": "not-a-jwt"})
    dialect = FyersAdapter.market_stream(fyers_account, {"access_token": fake.ACCESS_TOKEN})
    assert dialect.url().endswith("/hsm/v1-5/prod") and fake.HSM_KEY not in repr(dialect)


def test_orders_are_found_by_our_tag_with_their_terms(world, fyers_account, fyers_server):
    adapter = registry.adapter_for(fyers_account)
    stop = adapter.place_order(_request(world, order_type="SL", trigger_price=Decimal("991"), tag="stop1"))
    order = adapter.order_by_tag("stop1")
    assert order is not None and order.broker_order_id == stop.broker_order_id
    assert (order.status, order.order_type, order.price, order.trigger_price) == ("OPEN", "SL", 990, 991)
    assert fyers_server.orders[stop.broker_order_id]["orderTag"] == "1:stop1"
    market = adapter.place_order(_request(world, order_type="MARKET", price=None, tag="mkt1", side="SELL"))
    filled = adapter.order_by_tag("mkt1")
    assert filled.status == "FILLED" and filled.average_price == Decimal("1000") and len(filled.fills) == 1
    assert filled.fills[0].exchange == "NSE" and filled.fills[0].broker_order_id == market.broker_order_id
    assert {(p.instrument_id, p.product, p.net_quantity) for p in adapter.positions()} == {
        (world.equity.pk, "MIS", -10)
    }
    assert fyers_server.violations == []


def test_modifying_or_cancelling_an_order_fyers_does_not_have_is_not_found(fyers_account, fyers_server):
    adapter = registry.adapter_for(fyers_account)
    with pytest.raises(BrokerOrderNotFound):
        adapter.modify_order(broker_order_id="25080499999999", change=BrokerModifyRequest(quantity=1))
    with pytest.raises(BrokerOrderNotFound):
        adapter.cancel_order(broker_order_id="25080499999999")
    sent = len(fyers_server.requests)
    with pytest.raises(BrokerOrderNotFound):
        adapter.cancel_order(broker_order_id="../orders")  # not an order id: nothing sent
    assert len(fyers_server.requests) == sent


def test_a_cancelled_order_cannot_be_cancelled_again(world, fyers_account, fyers_server):
    adapter = registry.adapter_for(fyers_account)
    placed = adapter.place_order(_request(world, tag="twice"))
    adapter.cancel_order(broker_order_id=placed.broker_order_id)
    with pytest.raises(BrokerRejected) as refused:
        adapter.cancel_order(broker_order_id=placed.broker_order_id)
    assert refused.value.extra["fyers_code"] == -161


def test_holdings_funds_and_quotes_are_read_in_our_terms(world, fyers_account, fyers_server):
    adapter = registry.adapter_for(fyers_account)
    (holding,) = adapter.holdings()
    assert (holding.instrument_id, holding.quantity, holding.average_price) == (world.equity.pk, 5, Decimal("950.5"))
    funds = adapter.funds()
    assert (funds.cash, funds.margin_used, funds.available) == (Decimal(100000), Decimal("2500.5"), Decimal("97499.5"))
    quote = adapter.quotes([world.equity.pk, world.future.pk])[world.equity.pk]
    assert (quote.ltp, quote.bid, quote.ask, quote.volume) == (
        Decimal(1000),
        Decimal("999.95"),
        Decimal("1000.05"),
        12345,
    )
    assert fyers_server.last("quote").query == {"symbols": "NSE:RELIANCE-EQ"}  # the future has no Fyers mapping


def test_a_dead_token_ends_the_accounts_session(world, fyers_account, fyers_server):
    fyers_server.fail_next("orders", "session_expired")
    with pytest.raises(BrokerSessionExpired):
        registry.adapter_for(fyers_account).order_book()
    session = BrokerSession.objects.get(account=fyers_account)
    assert session.state == BrokerSession.State.ENDED and "authenticate" in session.ended_reason
    assert not registry.adapter_for(fyers_account).signed_in


def test_an_expiry_the_token_does_not_give_is_the_next_six_in_the_morning():
    from families.fyers.adapter import _expiry

    moment = _expiry({"exp": "tomorrow"})
    assert moment > timezone.now() and moment - timezone.now() <= timedelta(days=1)
    assert moment.astimezone(fake_ist()).strftime("%H:%M") == "06:00"
    assert _expiry({"exp": int(timezone.now().timestamp()) + 10 * 86400}) == moment  # implausibly far: ignored


def fake_ist():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Kolkata")
