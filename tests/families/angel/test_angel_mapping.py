"""Angel One's words and ours, both ways, and the requests built from our orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, BrokerRejected
from brokers.instrument_map import BrokerSymbol
from families.angel import mapping, records
from families.angel.adapter import AngelAdapter, modify_body, place_body

RELIANCE = BrokerSymbol("NSE:2885", "RELIANCE-EQ", "NSE")


def _request(**overrides) -> BrokerOrderRequest:
    fields = {
        "tag": "a1b2c3d4e5f6a7b8c9d0",
        "instrument_id": 1,
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "validity": "DAY",
        "instrument_type": "EQ",
        "tick_size": Decimal("0.05"),
        "price": Decimal("990.05"),
    }
    fields.update(overrides)
    return BrokerOrderRequest(**fields)


def test_products_order_types_and_exchanges_map_both_ways():
    assert mapping.PRODUCTS == {"CNC": "DELIVERY", "MIS": "INTRADAY", "NRML": "CARRYFORWARD"}
    for ours, angel in mapping.PRODUCTS.items():
        assert mapping.OUR_PRODUCTS[angel] == ours
    assert mapping.OUR_PRODUCTS["MARGIN"] == "NRML"
    for ours, angel in mapping.ORDER_TYPES.items():
        assert mapping.OUR_ORDER_TYPES[angel] == ours
    assert mapping.ORDER_TYPES["SL-M"] == "STOPLOSS_MARKET"
    for ours, angel in mapping.EXCHANGES.items():
        assert mapping.OUR_EXCHANGES[angel] == ours
    assert {number: name for name, number in mapping.EXCHANGE_TYPES.items()} == mapping.SEGMENTS_BY_TYPE


@pytest.mark.parametrize(
    ("angel", "ours"),
    [
        ("open", "OPEN"),
        ("trigger pending", "TRIGGER_PENDING"),
        ("complete", "FILLED"),
        ("cancelled", "CANCELLED"),
        ("rejected", "REJECTED"),
        ("Cancelled After Market Order", "CANCELLED"),
        ("open pending", "TRIGGER_PENDING"),  # transitional: keeps the current status
        ("modify validation pending", "TRIGGER_PENDING"),
        ("after market order req received", "TRIGGER_PENDING"),
        ("something new", "TRIGGER_PENDING"),
    ],
)
def test_statuses_map_and_transitional_ones_keep_the_current(angel, ours):
    assert mapping.status_of(angel, current="TRIGGER_PENDING") == ours


def test_varieties_follow_the_order_type():
    assert mapping.variety_for("regular", "LIMIT") == "NORMAL"
    assert mapping.variety_for("regular", "SL") == mapping.variety_for("regular", "SL-M") == "STOPLOSS"
    assert mapping.variety_for("amo", "LIMIT") == "AMO"
    with pytest.raises(ValueError):
        mapping.variety_for("iceberg", "LIMIT")


def test_a_limit_order_is_every_value_a_string_with_our_tag():
    assert place_body(_request(), RELIANCE) == {
        "variety": "NORMAL",
        "tradingsymbol": "RELIANCE-EQ",
        "symboltoken": "2885",
        "transactiontype": "BUY",
        "exchange": "NSE",
        "ordertype": "LIMIT",
        "producttype": "INTRADAY",
        "duration": "DAY",
        "price": "990.05",
        "squareoff": "0",
        "stoploss": "0",
        "quantity": "10",
        "ordertag": "a1b2c3d4e5f6a7b8c9d0",
    }


def test_stop_loss_orders_go_as_variety_stoploss_with_their_trigger():
    body = place_body(_request(order_type="SL-M", price=None, trigger_price=Decimal("1010"), side="SELL"), RELIANCE)
    assert (body["variety"], body["ordertype"], body["price"], body["triggerprice"]) == (
        "STOPLOSS",
        "STOPLOSS_MARKET",
        "0",
        "1010",
    )
    body = place_body(_request(order_type="SL", trigger_price=Decimal("985"), product="CNC", validity="IOC"), RELIANCE)
    assert (body["ordertype"], body["producttype"], body["duration"]) == ("STOPLOSS_LIMIT", "DELIVERY", "IOC")


@pytest.mark.parametrize(
    "overrides",
    [
        {"order_type": "SL", "trigger_price": None},
        {"order_type": "LIMIT", "price": None},
        {"tag": "x" * 21},
        {"tag": ""},
        {"product": "CO"},
        {"variety": "iceberg"},
    ],
)
def test_an_order_angel_cannot_take_is_refused_before_sending(overrides):
    with pytest.raises(BrokerRejected) as refused:
        place_body(_request(**overrides), RELIANCE)
    assert refused.value.code == "broker_cannot_order"


def test_a_modification_restates_the_order_with_the_change():
    order = records.order_from(
        {
            "orderid": "261206000000101",
            "variety": "STOPLOSS",
            "ordertype": "STOPLOSS_LIMIT",
            "producttype": "CARRYFORWARD",
            "duration": "DAY",
            "price": 990.0,
            "triggerprice": "985",
            "quantity": "75",
            "tradingsymbol": "NIFTY26DECFUT",
            "symboltoken": "35001",
            "exchange": "NFO",
            "status": "trigger pending",
        }
    )
    assert modify_body(order, BrokerModifyRequest(trigger_price=Decimal("980.5"))) == {
        "variety": "STOPLOSS",
        "orderid": "261206000000101",
        "ordertype": "STOPLOSS_LIMIT",
        "producttype": "CARRYFORWARD",
        "duration": "DAY",
        "price": "990.0",
        "quantity": "75",
        "tradingsymbol": "NIFTY26DECFUT",
        "symboltoken": "35001",
        "exchange": "NFO",
        "triggerprice": "980.5",
    }
    to_market = modify_body(order, BrokerModifyRequest(order_type="MARKET", quantity=150))
    assert (to_market["ordertype"], to_market["price"], to_market["quantity"]) == ("MARKET", "0", "150")
    assert "triggerprice" not in to_market


def test_the_capabilities_say_what_angel_takes():
    capabilities = AngelAdapter.capabilities
    assert capabilities.tag_length == 20 and not capabilities.gtt and not capabilities.market_protection
    assert capabilities.varieties == {"regular", "amo"} and "BCD" not in capabilities.exchanges
    assert AngelAdapter.login is not None and AngelAdapter.login.kind == "totp"
    assert AngelAdapter.login.credentials == ("api_key", "pin", "totp_secret")


@given(
    side=st.sampled_from(["BUY", "SELL", "HOLD"]),
    quantity=st.integers(min_value=-5, max_value=10**9),
    order_type=st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M", "STOP"]),
    product=st.sampled_from(["CNC", "MIS", "NRML", "BO"]),
    validity=st.sampled_from(["DAY", "IOC", "GTC"]),
    variety=st.sampled_from(["regular", "amo", "co"]),
    price=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**7, places=2)),
    trigger=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**7, places=2)),
    tag=st.text(max_size=30),
)
def test_request_building_raises_only_the_typed_refusal(
    side, quantity, order_type, product, validity, variety, price, trigger, tag
):
    request = _request(
        side=side,
        quantity=quantity,
        order_type=order_type,
        product=product,
        validity=validity,
        variety=variety,
        price=price,
        trigger_price=trigger,
        tag=tag,
    )
    try:
        body = place_body(request, RELIANCE)
    except BrokerRejected as refused:
        assert refused.code == "broker_cannot_order"
        return
    assert all(isinstance(value, str) for value in body.values())
    assert "E" not in body["price"] and len(body["ordertag"]) <= 20
