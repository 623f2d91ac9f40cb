"""Angel One's answers read into data or the typed error, for each failure the documentation lists."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import (
    BrokerError,
    BrokerInsufficientMargin,
    BrokerMarketClosed,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from families.angel.client import CALLS, read_answer

JSON = "application/json"


def _body(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_a_success_envelope_gives_its_data():
    body = _body(status=True, message="SUCCESS", errorcode="", data={"orderid": "261206000000101"})
    assert read_answer("place", 200, JSON, body) == {"orderid": "261206000000101"}
    assert read_answer("orders", 200, JSON, _body(status=True, message="SUCCESS", errorcode="", data=None)) is None


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("AG8001", "Invalid Token"),
        ("AG8002", "Token Expired"),
        ("AG8003", "Token missing"),
        ("AB1010", "AMX Session Expired"),
        ("AB1011", "Client not login"),
        ("AB8050", "Invalid Refresh Token"),
        ("AB8051", "Refresh Token Expired"),
    ],
)
def test_session_codes_mean_sign_in_again(code, message):
    with pytest.raises(BrokerSessionExpired) as raised:
        read_answer("orders", 200, JSON, _body(status=False, message=message, errorcode=code, data=None))
    assert message in raised.value.message and raised.value.extra["errorcode"] == code


def test_the_gateways_token_refusal_is_a_dead_session():
    body = _body(success=False, message="Invalid Token", errorCode="AG8001", data="")
    with pytest.raises(BrokerSessionExpired):
        read_answer("place", 401, JSON, body)


@pytest.mark.parametrize("code", ["AB1004", "AB2001"])
def test_something_went_wrong_leaves_a_write_unknown(code):
    body = _body(status=False, message="Something Went Wrong, Please Try After Sometime", errorcode=code, data=None)
    with pytest.raises(BrokerUnavailable):
        read_answer("place", 200, JSON, body)


def test_the_rate_limit_answer_is_not_sent():
    with pytest.raises(BrokerRateLimited):
        read_answer("orders", 403, "text/plain", b"Access denied because of exceeding access rate")
    with pytest.raises(BrokerRateLimited):
        read_answer("place", 429, JSON, _body(message="Too many requests"))


@pytest.mark.parametrize(
    ("call", "code", "message", "error"),
    [
        ("place", "AB1009", "Symbol Not Found", BrokerRejected),
        ("place", "AB1008", "Invalid Order Variety", BrokerRejected),
        ("place", "AB1012", "Invalid Product Type", BrokerRejected),
        ("place", "AB4008", "Ordertag length should not exceed 20 characters", BrokerRejected),
        ("place", "AB2000", "Insufficient Funds. Margin shortfall of Rs. 1200", BrokerInsufficientMargin),
        ("place", "AB2000", "Market is closed", BrokerMarketClosed),
        ("cancel", "AB1013", "Order not found", BrokerOrderNotFound),
        ("modify", "AB1013", "Order not found", BrokerOrderNotFound),
        ("login", "AB1007", "Invalid clientcode or password", BrokerRejected),
        ("login", "AB1050", "Invalid totp", BrokerRejected),
    ],
)
def test_refusals_are_the_most_precise_rejection_with_angels_words(call, code, message, error):
    with pytest.raises(error) as raised:
        read_answer(call, 200, JSON, _body(status=False, message=message, errorcode=code, data=None))
    assert message in raised.value.message
    assert type(raised.value) is error


def test_a_false_status_as_text_is_a_failure_too():
    # The documentation's sample failure spells the flag as a string.
    with pytest.raises(BrokerRejected):
        read_answer("place", 200, JSON, _body(status="false", message="Invalid", errorcode="AB2000", data="null"))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"unexpected": true}'),
        (200, b'{"status": true, "data": {"orderid": "1"'),
        (200, b"[1, 2]"),
        (500, b"<html>Internal Server Error</html>"),
        (502, b""),
        (503, _body(error="down")),
    ],
)
def test_a_malformed_or_failed_answer_is_an_unknown_outcome(status, body):
    with pytest.raises(BrokerUnavailable):
        read_answer("place", status, JSON, body)


@given(
    call=st.sampled_from(sorted(CALLS)),
    status=st.sampled_from([200, 201, 400, 401, 403, 404, 429, 500, 502, 503]),
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
            max_leaves=12,
        ).map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries(
            {"status": st.one_of(st.booleans(), st.text(max_size=6)), "message": st.text(max_size=30)},
            optional={"errorcode": st.text(max_size=8), "data": st.none() | st.integers()},
        ).map(lambda value: json.dumps(value).encode()),
    ),
)
def test_no_answer_raises_anything_but_a_typed_error(call, status, body):
    try:
        read_answer(call, status, JSON, body)
    except BrokerError as error:
        assert error.code
