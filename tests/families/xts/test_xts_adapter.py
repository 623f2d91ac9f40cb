"""The XTS adapter against the local XTS server: both sign-ins (investor and dealer), the session's
end on a refused token, the exact requests, updates from the interactive socket's events, and request
building fuzzed (nothing escapes but the typed errors)."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from brokers.adapters import registry
from brokers.adapters.base import (
    BrokerError,
    BrokerModifyRequest,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerRejected,
    BrokerSessionExpired,
)
from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerInstrument
from brokers.services.credentials import broker_credentials_set
from brokers.services.sessions import session_secrets, session_start, session_state
from families.xts.adapter import XtsAdapter
from tests.families.xts import server as xs


def _request(world, *, order_type="LIMIT", price="990", trigger=None, tag="X0001", **kwargs):
    return BrokerOrderRequest(
        tag=tag,
        instrument_id=world.equity.pk,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side=kwargs.get("side", "BUY"),
        quantity=kwargs.get("quantity", 10),
        order_type=order_type,
        product=kwargs.get("product", "MIS"),
        validity=kwargs.get("validity", "DAY"),
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal(price) if price is not None else None,
        trigger_price=Decimal(trigger) if trigger is not None else None,
    )


@pytest.fixture
def signed_in(world, xts, xts_account):
    from django.utils import timezone

    sign_in = XtsAdapter.login_direct(xts_account)
    session_start(account=xts_account, secrets=sign_in.secrets, expires_at=timezone.now() + timezone.timedelta(hours=1))
    BrokerInstrument.objects.create(
        broker="xts", instrument=world.equity, token="1_2885", tradingsymbol="RELIANCE-EQ", exchange="NSECM",
        listed_at=timezone.now(),
    )  # fmt: skip
    instrument_map_invalidate()
    yield xts_account
    instrument_map_invalidate()


def test_an_investors_sign_in_keeps_both_tokens_and_names_no_client(world, xts, xts_account):
    sign_in = XtsAdapter.login_direct(xts_account)
    assert sign_in.secrets == {
        "token": xs.TOKEN, "investor": "1", "md_token": xs.MD_TOKEN, "md_user_id": xs.MD_USER_ID,
    }  # fmt: skip
    assert sign_in.broker_user == xs.USER_ID and sign_in.expires_at.tzinfo is not None
    assert xts.last("login").body == {"appKey": xs.APP_KEY, "secretKey": xs.SECRET_KEY, "source": "WEBAPI"}
    assert xts.last("md_login").body == {"appKey": xs.MD_APP_KEY, "secretKey": xs.MD_SECRET_KEY, "source": "WEBAPI"}


def test_a_dealers_session_names_the_client_on_every_interactive_call(world, xts, signed_in):
    from django.utils import timezone

    xts.investor = False
    sign_in = XtsAdapter.login_direct(signed_in)
    assert sign_in.secrets["investor"] == "0"
    session_start(account=signed_in, secrets=sign_in.secrets, expires_at=timezone.now() + timezone.timedelta(hours=1))
    adapter = registry.adapter_for(signed_in)
    result = adapter.place_order(_request(world))
    adapter.order_book()
    adapter.cancel_order(broker_order_id=result.broker_order_id)
    assert xts.last("place").body["clientID"] == xs.USER_ID
    assert xts.last("orders").query == {"clientID": xs.USER_ID}
    assert xts.last("cancel").query["clientID"] == xs.USER_ID


def test_missing_credentials_are_refused_before_anything_is_sent(world, xts, xts_account):
    broker_credentials_set(account=xts_account, credentials={"app_key": xs.APP_KEY, "secret_key": xs.SECRET_KEY})
    with pytest.raises(ValueError, match="md_app_key"):
        XtsAdapter.login_direct(xts_account)
    assert xts.requests == []


def test_wrong_keys_are_xts_refusal(world, xts, xts_account):
    broker_credentials_set(
        account=xts_account,
        credentials={"app_key": "x", "secret_key": "y", "md_app_key": "z", "md_secret_key": "w"},
    )
    with pytest.raises(BrokerRejected, match="Invalid appKey"):
        XtsAdapter.login_direct(xts_account)


def test_a_refused_token_ends_the_accounts_session(world, xts, signed_in):
    xts.fail_next("orders", "session_expired")
    with pytest.raises(BrokerSessionExpired):
        registry.adapter_for(signed_in).order_book()
    assert not session_state(signed_in).live


def test_stop_orders_carry_their_trigger_and_modify_restates_every_term(world, xts, signed_in):
    adapter = registry.adapter_for(signed_in)
    result = adapter.place_order(_request(world, order_type="SL", price="1010", trigger="1005", validity="IOC"))
    assert xts.last("place").body | {} == xts.last("place").body
    body = xts.last("place").body
    assert (body["orderType"], body["limitPrice"], body["stopPrice"], body["timeInForce"]) == (
        "STOPLIMIT", 1010, 1005, "IOC",
    )  # fmt: skip
    adapter.modify_order(broker_order_id=result.broker_order_id, change=BrokerModifyRequest(order_type="SL-M"))
    assert xts.last("modify").body == {
        "appOrderID": int(result.broker_order_id), "modifiedProductType": "MIS", "modifiedOrderType": "STOPMARKET",
        "modifiedOrderQuantity": 10, "modifiedDisclosedQuantity": 0, "modifiedLimitPrice": 0,
        "modifiedStopPrice": 1005, "modifiedTimeInForce": "IOC", "orderUniqueIdentifier": "X0001",
    }  # fmt: skip
    row = adapter.order_by_tag("X0001")
    assert row is not None and (row.order_type, row.trigger_price, row.price) == ("SL-M", Decimal("1005"), None)


def test_an_order_xts_does_not_have_is_not_found(world, xts, signed_in):
    adapter = registry.adapter_for(signed_in)
    with pytest.raises(BrokerOrderNotFound):
        adapter.cancel_order(broker_order_id="999")
    with pytest.raises(BrokerOrderNotFound):
        adapter.modify_order(broker_order_id="../x", change=BrokerModifyRequest(quantity=1))


def test_positions_holdings_and_funds_are_read_from_xts_shapes(world, xts, signed_in):
    adapter = registry.adapter_for(signed_in)
    adapter.place_order(_request(world, order_type="MARKET", price=None, side="SELL", quantity=4))
    [position] = adapter.positions()
    assert (position.instrument_id, position.product, position.net_quantity) == (world.equity.pk, "MIS", -4)
    assert position.average_price == Decimal("1000.05")
    [holding] = adapter.holdings()
    assert (holding.instrument_id, holding.quantity, holding.average_price) == (world.equity.pk, 5, Decimal("950.5"))
    funds = adapter.funds()
    assert (funds.cash, funds.margin_used, funds.available) == (Decimal("100000.5"), 500, Decimal("99500.5"))
    quote = adapter.quotes([world.equity.pk])[world.equity.pk]
    assert quote.ltp == Decimal("1000.05") and quote.bid == Decimal("1000.00")
    assert xts.last("quote").body == {
        "instruments": [{"exchangeSegment": 1, "exchangeInstrumentID": 2885}], "xtsMessageCode": 1501,
        "publishFormat": "JSON",
    }  # fmt: skip


def test_updates_from_the_interactive_sockets_events(world, xts, signed_in):
    adapter = registry.adapter_for(signed_in)
    result = adapter.place_order(_request(world))
    xts.fill(result.broker_order_id, Decimal("990"))
    order = dict(xts.orders[result.broker_order_id])
    update = XtsAdapter.update_from_stream(signed_in.pk, order)
    assert update is not None and (update.tag, update.status, update.filled_quantity) == ("X0001", "FILLED", 10)
    assert update.fill is not None and (update.fill.quantity, update.fill.price) == (10, Decimal("990"))
    assert update.fill.trade_id == order["ExecutionID"] and update.fill.exchange == "NSE"
    assert XtsAdapter.update_from_stream(signed_in.pk, {**order, "OrderUniqueIdentifier": ""}) is None
    pending = {**order, "OrderStatus": "PendingCancel", "ExecutionID": "", "LastTradedQuantity": 0}
    assert XtsAdapter.update_from_stream(signed_in.pk, pending) is None
    for bad in (
        {},
        {"AppOrderID": "x", "OrderStatus": "New"},
        {"AppOrderID": 1, "OrderStatus": [5], "OrderUniqueIdentifier": "T"},
    ):
        with pytest.raises(ValueError):
            XtsAdapter.update_from_stream(signed_in.pk, bad)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order_type=st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M", "STOP", ""]),
    product=st.sampled_from(["CNC", "MIS", "NRML", "CO"]),
    validity=st.sampled_from(["DAY", "IOC", "GTC"]),
    side=st.sampled_from(["BUY", "SELL", "buy"]),
    quantity=st.integers(min_value=-5, max_value=10_000),
    price=st.one_of(st.none(), st.decimals(allow_nan=True, allow_infinity=True, places=2)),
    trigger=st.one_of(st.none(), st.decimals(min_value=-10, max_value=10**6, places=2)),
)
def test_request_building_raises_only_typed_errors(world, xts, signed_in, order_type, product, validity, side,
                                                   quantity, price, trigger):  # fmt: skip
    adapter = XtsAdapter.for_account(signed_in, session_secrets(signed_in))
    request = BrokerOrderRequest(
        tag="H1", instrument_id=world.equity.pk, exchange="NSE", tradingsymbol="RELIANCE", side=side,
        quantity=quantity, order_type=order_type, product=product, validity=validity, instrument_type="EQ",
        tick_size=Decimal("0.05"), price=price, trigger_price=trigger,
    )  # fmt: skip
    with contextlib.suppress(BrokerError):
        adapter.place_order(request)
