"""Upstox's answers mapped to the broker contract's typed errors, for each error its documentation lists."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import (
    BrokerError,
    BrokerInsufficientMargin,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from families.upstox.client import answer, token_answer


def _error(code: str, message: str) -> bytes:
    return json.dumps({"status": "error", "errors": [{"errorCode": code, "message": message}]}).encode()


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (401, "UDAPI100050", "Invalid token used to access API", BrokerSessionExpired),
        (
            401,
            "UDAPI100067",
            "The API you are trying to access is not permitted with an extended_token",
            BrokerSessionExpired,
        ),
        (401, "UDAPI100016", "Invalid Credentials", BrokerRejected),
        (403, "UDAPI100073", "Your 'client_id' is inactive.", BrokerRejected),
        (429, "UDAPI10005", "Too Many Request Sent", BrokerRateLimited),
        (400, "UDAPI10005", "Too Many Request Sent", BrokerRateLimited),
        (500, "UDAPI100500", "Something went wrong... please contact us", BrokerUnavailable),
        (503, "UDAPI1", "offline for maintenance", BrokerUnavailable),
        (400, "UDAPI100036", "Invalid Input", BrokerRejected),
        (400, "UDAPI1004", "Valid order type is required", BrokerRejected),
        (400, "UDAPI100015", "API Version does not exist", BrokerRejected),
        (400, "UDAPI1000", "Insufficient funds. Required margin is 5000", BrokerInsufficientMargin),
    ],
)
def test_each_documented_error_is_its_typed_error_with_upstoxs_message(status, code, message, expected):
    with pytest.raises(BrokerError) as raised:
        answer()(status, "application/json", _error(code, message))
    assert type(raised.value) is expected
    assert raised.value.message == message and raised.value.extra["error_code"] == code


def test_an_unknown_order_on_a_modify_or_cancel_is_not_found():
    with pytest.raises(BrokerOrderNotFound):
        answer(order_specific=True)(400, "application/json", _error("UDAPI100010", "Order not found"))
    with pytest.raises(BrokerRejected) as plain:
        answer()(400, "application/json", _error("UDAPI100010", "Order not found"))
    assert type(plain.value) is BrokerRejected


def test_a_401_without_the_envelope_is_a_lapsed_session():
    with pytest.raises(BrokerSessionExpired):
        answer()(401, "application/json", b"{}")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"status": "success"}'),
        (200, b'{"data": {}}'),
        (200, b'{"status": "success", "data": {"order_ids": ["25'),
        (200, b"<html>gateway</html>"),
        (502, b""),
        (302, b'{"status": "success", "data": {}}'),
    ],
)
def test_an_answer_not_in_the_envelope_is_maybe_sent(status, body):
    with pytest.raises(BrokerUnavailable):
        answer()(status, "application/json", body)


def test_success_and_partial_success_return_the_data():
    assert answer()(200, "application/json", b'{"status":"success","data":{"order_ids":["1"]}}') == {"order_ids": ["1"]}
    partial = b'{"status":"partial_success","data":{"order_ids":["1","2"]},"errors":null}'
    assert answer()(200, "application/json", partial) == {"order_ids": ["1", "2"]}


def test_the_token_exchange_answers_without_an_envelope():
    assert token_answer(200, "application/json", b'{"access_token": "abc", "user_id": "U1"}')["access_token"] == "abc"
    with pytest.raises(BrokerRejected):
        token_answer(401, "application/json", _error("UDAPI100016", "Invalid Credentials"))


@given(status=st.integers(min_value=100, max_value=599), body=st.binary(max_size=200))
def test_no_answer_raises_anything_but_a_typed_error(status, body):
    with contextlib.suppress(BrokerError):
        answer()(status, "application/json", body)


@given(
    status=st.integers(min_value=200, max_value=599),
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["status", "data", "errors", "errorCode", "message", "x"]), inner, max_size=4
            )
        ),
        max_leaves=12,
    ),
)
def test_no_json_shape_raises_anything_but_a_typed_error(status, payload):
    try:
        answer(order_specific=True)(status, "application/json", json.dumps(payload).encode())
        token_answer(status, "application/json", json.dumps(payload).encode())
    except BrokerError:
        pass
