"""XTS's envelope and each error it documents, mapped to the typed errors with XTS's words."""

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
from families.xts.errors import answer


def _answer(status, payload, **kwargs):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return answer(status, "application/json", body, broker="iifl", **kwargs)


def _error(description, code="e-orders-0005", result=None):
    return {"type": "error", "code": code, "description": description, "result": result or {}}


def test_a_success_answers_its_result():
    assert _answer(
        200, {"type": "success", "code": "s-orders-0001", "description": "ok", "result": {"AppOrderID": 7}}
    ) == {"AppOrderID": 7}


def test_invalid_token_is_a_dead_session_as_the_sdk_reads_it():
    with pytest.raises(BrokerSessionExpired) as raised:
        _answer(400, _error("Invalid Token", code="e-session-0007"))
    assert "Invalid Token" in raised.value.message


@pytest.mark.parametrize("status", [401, 403])
def test_an_unauthorised_status_is_a_dead_session(status):
    with pytest.raises(BrokerSessionExpired):
        _answer(status, _error("Unauthorized"))


def test_bad_request_carries_its_errors_in_the_message():
    with pytest.raises(BrokerRejected) as raised:
        _answer(400, _error("Bad Request", result={"errors": [{"field": "limitPrice", "messages": ["must be > 0"]}]}))
    assert "Bad Request" in raised.value.message and "must be > 0" in raised.value.message
    assert raised.value.extra["broker_code"] == "e-orders-0005"


def test_a_refusal_for_margin_is_insufficient_margin():
    with pytest.raises(BrokerInsufficientMargin):
        _answer(400, _error("RMS:Margin Exceeds,Required:10000, Available:500 (insufficient funds)"))


def test_an_unknown_order_is_not_found_only_for_a_call_naming_one():
    with pytest.raises(BrokerOrderNotFound):
        _answer(400, _error("Order not found"), order_specific=True)
    with pytest.raises(BrokerRejected) as raised:
        _answer(400, _error("Order not found"))
    assert type(raised.value) is BrokerRejected


def test_a_5xx_error_is_maybe_sent():
    with pytest.raises(BrokerUnavailable) as raised:
        _answer(500, _error("Internal Server Error", code="e-app-0001"))
    assert "Internal Server Error" in raised.value.message


def test_429_is_rate_limited_whatever_the_body():
    with pytest.raises(BrokerRateLimited):
        _answer(429, b"<html>slow down</html>")


@pytest.mark.parametrize(
    "payload", [b"", b"not json", b'{"type": "success"', b"[]", b'{"status": "ok"}', b'{"type": "weird"}']
)
def test_an_answer_outside_the_envelope_is_maybe_sent(payload):
    with pytest.raises(BrokerUnavailable):
        _answer(200, payload)


@given(status=st.integers(min_value=100, max_value=599), body=st.binary(max_size=200))
def test_any_answer_is_a_result_or_a_typed_error(status, body):
    with contextlib.suppress(BrokerError):
        answer(status, "application/json", body, broker="iifl")


@given(
    description=st.one_of(st.none(), st.text(max_size=80), st.integers()),
    result=st.one_of(st.none(), st.text(), st.dictionaries(st.text(max_size=5), st.lists(st.text(max_size=5)))),
    status=st.integers(min_value=200, max_value=599),
)
def test_any_error_envelope_is_a_typed_error(description, result, status):
    payload = json.dumps({"type": "error", "code": None, "description": description, "result": result}).encode()
    with pytest.raises(BrokerError):
        answer(status, "application/json", payload, broker="iifl")
