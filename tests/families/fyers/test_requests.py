"""The bodies the adapter sends, built from our requests: exact for every order type, refused before
sending for what Fyers cannot carry (hypothesis: nothing but a body or BrokerRejected comes out)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, BrokerRejected
from families.fyers.adapter import modify_body, order_body
from families.fyers.client import dumps

TICKER = "NSE:RELIANCE-EQ"


def _request(**terms) -> BrokerOrderRequest:
    base = dict(
        tag="a1b2c3d4e5f6a7b8c9d0",
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
    return BrokerOrderRequest(**{**base, **terms})


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ({}, {"type": 1, "limitPrice": Decimal("990.05"), "stopPrice": 0}),
        ({"order_type": "MARKET", "price": None}, {"type": 2, "limitPrice": 0, "stopPrice": 0}),
        (
            {"order_type": "SL", "trigger_price": Decimal("991")},
            {"type": 4, "limitPrice": Decimal("990.05"), "stopPrice": Decimal("991")},
        ),
        (
            {"order_type": "SL-M", "price": None, "trigger_price": Decimal("985.5")},
            {"type": 3, "limitPrice": 0, "stopPrice": Decimal("985.5")},
        ),
        ({"side": "SELL", "product": "NRML"}, {"side": -1, "productType": "MARGIN"}),
        ({"product": "CNC", "validity": "IOC"}, {"productType": "CNC", "validity": "IOC"}),
        ({"variety": "amo"}, {"offlineOrder": True}),
    ],
)
def test_each_order_is_the_documented_body(terms, expected):
    body = order_body(_request(**terms), TICKER)
    full = {
        "symbol": TICKER,
        "qty": 10,
        "type": 1,
        "side": 1,
        "productType": "INTRADAY",
        "limitPrice": Decimal("990.05"),
        "stopPrice": 0,
        "validity": "DAY",
        "disclosedQty": 0,
        "offlineOrder": False,
        "stopLoss": 0,
        "takeProfit": 0,
        "orderTag": "a1b2c3d4e5f6a7b8c9d0",
    }
    assert body == {**full, **expected}


def test_prices_are_written_as_the_decimals_they_are_never_through_a_float():
    body = dumps({"limitPrice": Decimal("1234.10"), "stopPrice": Decimal("0.05"), "qty": 3, "big": Decimal("99999.95")})
    assert body == b'{"limitPrice":1234.1,"stopPrice":0.05,"qty":3,"big":99999.95}'
    assert json.loads(body, parse_float=Decimal)["limitPrice"] == Decimal("1234.1")
    assert dumps({"p": Decimal("990")}) == b'{"p":990}' and dumps({"p": Decimal("1E+3")}) == b'{"p":1000}'
    with pytest.raises(ValueError):
        dumps({"p": Decimal("NaN")})


@pytest.mark.parametrize(
    "terms",
    [
        {"order_type": "LIMIT", "price": None},
        {"order_type": "SL", "trigger_price": None},
        {"order_type": "SL-M", "price": None, "trigger_price": Decimal("-1")},
        {"order_type": "STOP"},
        {"product": "MTF"},
        {"validity": "TTL"},
        {"side": "HOLD"},
        {"variety": "iceberg"},
        {"quantity": 0},
        {"price": Decimal("Infinity")},
    ],
)
def test_terms_fyers_cannot_carry_are_refused_before_sending(terms):
    with pytest.raises(BrokerRejected) as refused:
        order_body(_request(**terms), TICKER)
    assert refused.value.code == "broker_cannot"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (BrokerModifyRequest(quantity=5, price=Decimal("985.5")), {"qty": 5, "limitPrice": Decimal("985.5")}),
        (BrokerModifyRequest(trigger_price=Decimal("980")), {"stopPrice": Decimal("980")}),
        (BrokerModifyRequest(order_type="MARKET", price=Decimal("985")), {"type": 2}),
        (
            BrokerModifyRequest(order_type="SL", price=Decimal("985"), trigger_price=Decimal("986")),
            {"type": 4, "limitPrice": Decimal("985"), "stopPrice": Decimal("986")},
        ),
    ],
)
def test_a_modification_sends_the_id_and_only_what_changes(change, expected):
    assert modify_body("25080400000101", change) == {"id": "25080400000101", **expected}


def test_a_modification_that_changes_nothing_is_refused():
    with pytest.raises(BrokerRejected):
        modify_body("25080400000101", BrokerModifyRequest())


@given(
    order_type=st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M", "X", ""]),
    side=st.sampled_from(["BUY", "SELL", "buy"]),
    product=st.sampled_from(["CNC", "MIS", "NRML", "CO"]),
    validity=st.sampled_from(["DAY", "IOC", "GTC"]),
    variety=st.sampled_from(["regular", "amo", "co"]),
    quantity=st.integers(min_value=-5, max_value=10**7),
    price=st.one_of(st.none(), st.decimals(allow_nan=True, allow_infinity=True, places=2)),
    trigger=st.one_of(st.none(), st.decimals(allow_nan=True, allow_infinity=True, places=2)),
    tag=st.text(max_size=25),
)
def test_any_request_is_a_body_or_refused(order_type, side, product, validity, variety, quantity, price, trigger, tag):
    request = _request(
        order_type=order_type,
        side=side,
        product=product,
        validity=validity,
        variety=variety,
        quantity=quantity,
        price=price,
        trigger_price=trigger,
        tag=tag,
    )
    try:
        body = order_body(request, TICKER)
    except BrokerRejected as refused:
        assert refused.code == "broker_cannot"
        return
    encoded = json.loads(dumps(body), parse_float=Decimal)
    assert encoded["qty"] >= 1 and encoded["type"] in (1, 2, 3, 4) and encoded["side"] in (1, -1)
    assert (encoded["limitPrice"] > 0) == (order_type in ("LIMIT", "SL"))
    assert (encoded["stopPrice"] > 0) == (order_type in ("SL", "SL-M"))
