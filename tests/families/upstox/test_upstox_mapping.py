"""Upstox's names for our vocabulary, both ways, and the request bodies built from our orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, BrokerRejected
from brokers.instrument_map import BrokerSymbol
from families.upstox import mapping
from families.upstox.adapter import UpstoxAdapter, modify_body, place_body

SYMBOL = BrokerSymbol("NSE_EQ|INE002A01018", "RELIANCE", "NSE_EQ")


def _request(**overrides) -> BrokerOrderRequest:
    values = dict(
        tag="T0001",
        instrument_id=1,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        quantity=10,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal("990.05"),
    )
    values.update(overrides)
    return BrokerOrderRequest(**values)


def test_each_exchange_maps_to_its_segment_and_back():
    for ours, segment in mapping.SEGMENTS.items():
        assert mapping.EXCHANGES[segment] == ours
        assert mapping.segment_of(f"{segment}|12345") == segment
    assert mapping.EXCHANGES["NSE_INDEX"] == "NSE"


@pytest.mark.parametrize("key", ["NSE_EQ", "NSE_EQ|", "|INE002A01018", "XYZ_EQ|1", ""])
def test_a_malformed_instrument_key_is_refused(key):
    with pytest.raises(ValueError):
        mapping.segment_of(key)


def test_products_map_both_ways():
    assert mapping.PRODUCTS == {"CNC": "D", "MIS": "I", "NRML": "D"}
    assert mapping.product_of("I", "NSE_EQ") == "MIS"
    assert mapping.product_of("D", "NSE_EQ") == "CNC"
    assert mapping.product_of("D", "NSE_FO") == "NRML"
    assert mapping.product_of("MTF", "BSE_EQ") == "CNC"
    assert mapping.product_of("CO", "NSE_EQ") == "MIS"
    with pytest.raises(ValueError):
        mapping.product_of("X", "NSE_EQ")


@pytest.mark.parametrize(
    ("upstox", "ours"),
    [
        ("open", "OPEN"),
        ("trigger pending", "TRIGGER_PENDING"),
        ("complete", "FILLED"),
        ("cancelled", "CANCELLED"),
        ("cancelled after market order", "CANCELLED"),
        ("rejected", "REJECTED"),
        ("COMPLETE", "FILLED"),
    ],
)
def test_final_and_working_statuses_map(upstox, ours):
    assert mapping.status_of(upstox, current="OPEN") == ours


@pytest.mark.parametrize(
    "transitional",
    [
        "put order req received",
        "validation pending",
        "open pending",
        "modify pending",
        "cancel pending",
        "modify validation pending",
        "after market order req received",
        "not modified",
        "not cancelled",
        "unheard of",
    ],
)
def test_transitional_statuses_keep_the_current_one(transitional):
    assert mapping.status_of(transitional, current="TRIGGER_PENDING") == "TRIGGER_PENDING"


def test_capabilities_are_the_familys():
    caps = UpstoxAdapter.capabilities
    assert caps.order_types == {"MARKET", "LIMIT", "SL", "SL-M"} and caps.validities == {"DAY", "IOC"}
    assert caps.products == {"CNC", "MIS", "NRML"} and caps.varieties == {"regular"} and not caps.gtt
    assert caps.tag_length == 20 and UpstoxAdapter.login is not None and UpstoxAdapter.login.kind == "redirect"


def test_a_limit_order_body_has_every_required_field():
    assert place_body(_request(), SYMBOL) == {
        "quantity": 10,
        "product": "I",
        "validity": "DAY",
        "price": 990.05,
        "tag": "T0001",
        "slice": False,
        "instrument_token": "NSE_EQ|INE002A01018",
        "order_type": "LIMIT",
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0,
        "is_amo": False,
    }


def test_stop_orders_carry_their_trigger_and_market_ones_no_price():
    sl = place_body(_request(order_type="SL", trigger_price=Decimal("991"), product="CNC"), SYMBOL)
    assert (sl["price"], sl["trigger_price"], sl["product"]) == (990.05, 991.0, "D")
    slm = place_body(_request(order_type="SL-M", price=None, trigger_price=Decimal("991"), side="SELL"), SYMBOL)
    assert (slm["price"], slm["trigger_price"], slm["transaction_type"]) == (0, 991.0, "SELL")
    market = place_body(_request(order_type="MARKET", price=Decimal("5"), validity="IOC"), SYMBOL)
    assert (market["price"], market["validity"]) == (0, "IOC")


def test_a_modification_lays_the_change_over_the_orders_terms():
    current = {
        "order_type": "SL",
        "validity": "DAY",
        "price": Decimal("990"),
        "trigger_price": Decimal("991"),
        "quantity": 10,
    }
    body = modify_body("250101000000001", current, BrokerModifyRequest(price=Decimal("985.5")))
    assert body == {
        "quantity": 10,
        "validity": "DAY",
        "price": 985.5,
        "order_id": "250101000000001",
        "order_type": "SL",
        "disclosed_quantity": 0,
        "trigger_price": 991.0,
    }
    to_market = modify_body("1", current, BrokerModifyRequest(order_type="MARKET", quantity=3))
    assert (to_market["price"], to_market["trigger_price"], to_market["quantity"]) == (0, 0, 3)


@given(
    product=st.sampled_from(["CNC", "MIS", "NRML", "BO", ""]),
    order_type=st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M", "STOP"]),
    validity=st.sampled_from(["DAY", "IOC", "GTC"]),
    side=st.sampled_from(["BUY", "SELL", "HOLD"]),
    variety=st.sampled_from(["regular", "amo", "co"]),
    price=st.one_of(st.none(), st.decimals(min_value=Decimal("0.05"), max_value=Decimal("99999"), places=2)),
    trigger=st.one_of(st.none(), st.decimals(min_value=Decimal("0.05"), max_value=Decimal("99999"), places=2)),
    quantity=st.integers(min_value=1, max_value=10**6),
)
def test_building_a_body_either_succeeds_with_documented_values_or_refuses_before_sending(
    product, order_type, validity, side, variety, price, trigger, quantity
):
    request = _request(
        product=product,
        order_type=order_type,
        validity=validity,
        side=side,
        variety=variety,
        price=price,
        trigger_price=trigger,
        quantity=quantity,
    )
    try:
        body = place_body(request, SYMBOL)
    except BrokerRejected as refused:
        assert refused.code in {"broker_unsupported", "broker_order_incomplete"}
        return
    assert body["product"] in {"I", "D"} and body["order_type"] in mapping.ORDER_TYPES
    assert body["validity"] in mapping.VALIDITIES and body["transaction_type"] in mapping.SIDES
    assert isinstance(body["price"], int | float) and isinstance(body["trigger_price"], int | float)
    assert (body["price"] > 0) == (order_type in {"LIMIT", "SL"})
    assert (body["trigger_price"] > 0) == (order_type in {"SL", "SL-M"})
