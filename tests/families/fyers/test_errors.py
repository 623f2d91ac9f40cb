"""Fyers' envelope and every error the documentation lists, mapped to the typed errors."""

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
from families.fyers.errors import answer


def _body(**payload) -> bytes:
    return json.dumps(payload).encode()


def test_an_ok_answer_is_returned_whole_with_decimal_prices():
    result = answer(200, "application/json", b'{"s":"ok","code":1101,"message":"","id":"25080400000101","p":1.05}')
    assert result["id"] == "25080400000101" and str(result["p"]) == "1.05"


@pytest.mark.parametrize(
    ("status", "code", "message", "error"),
    [
        (401, -16, "Could not authenticate the user", BrokerSessionExpired),
        (400, -8, "Your token has expired", BrokerSessionExpired),
        (400, -15, "Provided token is invalid", BrokerSessionExpired),
        (200, -17, "Token is invalid or expired", BrokerSessionExpired),
        (429, -353, "API Limit exceeded (perSec/perMin/perDay)", BrokerRateLimited),
        (200, -353, "API Limit exceeded (perSec/perMin/perDay)", BrokerRateLimited),
        (400, -201, "Connection error. Please try again", BrokerUnavailable),
        (400, -202, "Connection error. Please try again", BrokerUnavailable),
        (400, -204, "Connection error. Please try again", BrokerUnavailable),
        (400, -205, "Connection error. Please try again", BrokerUnavailable),
        (500, -96, "An unexpected error occurred. Please contact support.", BrokerUnavailable),
        (503, -50, "Service unavailable", BrokerUnavailable),
        (400, -101, "Please provide a valid order type", BrokerRejected),
        (400, -310, "Please provide a valid order quantity", BrokerRejected),
        (400, -392, "Price should be in multiples of tick size.", BrokerRejected),
        (400, -161, "This order has already been cancelled", BrokerRejected),
        (400, -162, "This order has already traded", BrokerRejected),
        (400, -371, "Please provide sha256 hash of appId and app secret", BrokerRejected),
        (400, -374, "Please provide authorization code.", BrokerRejected),
        (400, -99, "RMS:Margin Exceeds, Required:1000, Available:10", BrokerInsufficientMargin),
        (400, -99, "Insufficient funds", BrokerInsufficientMargin),
        (400, -99, "Market is closed", BrokerMarketClosed),
    ],
)
def test_each_documented_error_is_its_typed_error_with_fyers_message(status, code, message, error):
    with pytest.raises(error) as raised:
        answer(status, "application/json", _body(s="error", code=code, message=message))
    assert type(raised.value) is error or error is BrokerRejected
    assert raised.value.message == message
    if status != 429:  # HTTP 429 is read before the envelope, the same for every family
        assert raised.value.extra["fyers_code"] == code


@pytest.mark.parametrize("code", [-209, -159])
def test_an_unknown_order_is_not_found_only_on_a_call_that_names_one(code):
    body = _body(s="error", code=code, message="Please provide a valid order number")
    with pytest.raises(BrokerOrderNotFound):
        answer(400, "application/json", body, order_specific=True)
    with pytest.raises(BrokerRejected) as raised:
        answer(400, "application/json", body)
    assert not isinstance(raised.value, BrokerOrderNotFound)


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>502</html>", b'{"s":"ok"', b"[1,2]", b'{"status":"success"}', b'{"s":"maybe","code":1}', b"null"],
)
def test_a_body_outside_the_envelope_is_maybe_sent(body):
    with pytest.raises(BrokerUnavailable):
        answer(200, "application/json", body)


def test_ok_beside_an_error_status_is_not_the_documented_shape():
    with pytest.raises(BrokerUnavailable):
        answer(400, "application/json", _body(s="ok", code=200, message=""))


@given(status=st.integers(min_value=100, max_value=599), body=st.binary(max_size=200))
def test_any_answer_is_data_or_a_typed_error(status, body):
    try:
        result = answer(status, "application/json", body)
    except BrokerError as error:
        assert error.code
    else:
        assert isinstance(result, dict) and result["s"] == "ok"


@given(
    status=st.integers(min_value=200, max_value=599),
    payload=st.dictionaries(
        st.sampled_from(["s", "code", "message", "id"]),
        st.one_of(st.sampled_from(["ok", "error"]), st.integers(), st.text(max_size=20), st.none(), st.booleans()),
    ),
)
def test_any_envelope_shaped_answer_is_data_or_a_typed_error(status, payload):
    try:
        answer(status, "application/json", json.dumps(payload).encode())
    except BrokerError as error:
        assert error.code and isinstance(error.message, str)
