"""NorenOMS's vocabulary both ways, its envelope read into the typed errors for each answer the
documentation lists, and request bodies built as the SDK builds them."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qsl

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
from families.noren import mapping
from families.noren.client import body, jdata
from families.noren.errors import NotOk, answer


@pytest.mark.parametrize(
    ("table", "back"),
    [
        (mapping.EXCHANGES, mapping.EXCHANGES_BACK),
        (mapping.PRODUCTS, mapping.PRODUCTS_BACK),
        (mapping.ORDER_TYPES, mapping.ORDER_TYPES_BACK),
        (mapping.VALIDITIES, mapping.VALIDITIES_BACK),
        (mapping.SIDES, mapping.SIDES_BACK),
    ],
)
def test_every_mapping_reads_back_to_what_was_sent(table, back):
    assert {back[noren]: ours for ours, noren in table.items()} == {ours: ours for ours in table}


def test_the_codes_are_the_documented_ones():
    assert mapping.PRODUCTS == {"CNC": "C", "MIS": "I", "NRML": "M"}
    assert mapping.ORDER_TYPES == {"MARKET": "MKT", "LIMIT": "LMT", "SL": "SL-LMT", "SL-M": "SL-MKT"}
    assert mapping.SIDES == {"BUY": "B", "SELL": "S"}
    assert "BCD" not in mapping.EXCHANGES


def test_a_term_noren_does_not_offer_is_refused_before_sending():
    with pytest.raises(ValueError, match="NorenOMS has no product"):
        mapping.to_noren(mapping.PRODUCTS, "MTF", "product")


@pytest.mark.parametrize(
    ("status", "filled", "quantity", "expected"),
    [
        ("OPEN", 0, 10, "OPEN"),
        ("OPEN", 4, 10, "PARTIALLY_FILLED"),
        ("TRIGGER_PENDING", 0, 10, "TRIGGER_PENDING"),
        ("COMPLETE", 10, 10, "FILLED"),
        ("CANCELED", 3, 10, "CANCELLED"),
        ("REJECTED", 0, 10, "REJECTED"),
        ("PENDING", 0, 10, "TRIGGER_PENDING"),  # transitional: keeps the current status
        ("INVALID_STATUS_TYPE", 0, 10, "TRIGGER_PENDING"),
        ("Open", 0, 10, "OPEN"),
    ],
)
def test_statuses_map_to_ours_and_transitional_ones_keep_the_current(status, filled, quantity, expected):
    assert mapping.status_of(status, current="TRIGGER_PENDING", filled=filled, quantity=quantity) == expected


def test_an_update_without_a_known_status_is_read_by_its_report_type():
    assert mapping.status_of("", current="OPEN", report="Canceled") == "CANCELLED"
    assert mapping.status_of("", current="OPEN", report="PendingCancel") == "OPEN"
    assert mapping.status_of("", current="OPEN", report="Fill", filled=10, quantity=10) == "FILLED"


def _answer(payload, status=200):
    return answer(status, "application/json", json.dumps(payload).encode())


def test_ok_answers_and_books_come_back_as_they_are():
    assert _answer({"stat": "Ok", "norenordno": "20052000000017"})["norenordno"] == "20052000000017"
    assert _answer([{"stat": "Ok", "norenordno": "1"}]) == [{"stat": "Ok", "norenordno": "1"}]


@pytest.mark.parametrize(
    ("emsg", "error", "order_specific"),
    [
        ('Error Occurred : 2 "invalid input"', BrokerRejected, False),
        ("Invalid Input : Wrong Password", BrokerRejected, False),
        ("Rejected : ORA:Order not found", BrokerOrderNotFound, True),
        ("Rejected : ORA:Order not found to Cancel", BrokerOrderNotFound, True),
        ("RMS:Margin Exceeds,Required:10000.00, Available:10.00", BrokerInsufficientMargin, False),
    ],
)
def test_each_documented_refusal_is_its_typed_error_with_norens_words(emsg, error, order_specific):
    result = _answer({"stat": "Not_Ok", "request_time": "20:40:01 19-05-2020", "emsg": emsg})
    assert isinstance(result, NotOk)
    raised = result.error(order_specific=order_specific)
    assert type(raised) is error and raised.message == emsg


def test_an_expired_session_is_a_session_error():
    with pytest.raises(BrokerSessionExpired, match="Invalid Session Key"):
        _answer({"stat": "Not_Ok", "emsg": "Session Expired :  Invalid Session Key"})


def test_a_server_timeout_at_the_oms_may_have_been_sent():
    with pytest.raises(BrokerUnavailable):
        _answer({"stat": "Not_Ok", "emsg": "Server Timeout :  "})


def test_an_empty_book_is_no_data_not_an_error():
    result = _answer({"stat": "Not_Ok", "emsg": 'Error Occurred : 5 "no data"'})
    assert isinstance(result, NotOk) and result.no_data


@pytest.mark.parametrize(
    ("status", "content"),
    [
        (200, b"<html>maintenance</html>"),
        (200, b'{"stat": "Ok", "norenordno": "1'),
        (200, b'{"result": "?"}'),
        (200, b"42"),
        (502, b'{"stat": "Ok"}'),
        (500, b"[]"),
    ],
)
def test_an_answer_outside_the_envelope_is_unknown_outcome(status, content):
    with pytest.raises(BrokerUnavailable):
        answer(status, "application/json", content)


def test_http_429_is_rate_limited_whatever_the_body():
    with pytest.raises(BrokerRateLimited):
        answer(429, "text/html", b"slow down")


@given(st.integers(min_value=100, max_value=599), st.binary(max_size=200))
def test_the_envelope_reader_raises_only_typed_errors(status, content):
    try:
        result = answer(status, "application/json", content)
    except BrokerError:
        return
    assert isinstance(result, dict | list | NotOk)


def test_a_body_is_jdata_then_jkey_with_symbols_that_survive_form_decoding():
    raw = body({"uid": "FA12345", "tsym": "M&M-EQ", "remarks": "A+B 100%"}, "tok")
    assert raw.startswith("jData=") and raw.endswith("&jKey=tok")
    fields = parse_qsl(raw, strict_parsing=True)
    assert [name for name, _ in fields] == ["jData", "jKey"]
    assert json.loads(fields[0][1]) == {"uid": "FA12345", "tsym": "M&M-EQ", "remarks": "A+B 100%"}
    assert body({"uid": "x"}, None) == 'jData={"uid": "x"}'


@given(st.dictionaries(st.sampled_from(["uid", "tsym", "remarks", "prc"]), st.text(max_size=40), max_size=4))
def test_any_values_come_back_whole_from_a_form_decoder(values):
    fields = parse_qsl("jData=" + jdata(values), keep_blank_values=True, strict_parsing=True)
    assert len(fields) == 1 and json.loads(fields[0][1]) == values


def test_prices_go_as_plain_decimal_text():
    from families.noren.records import wire_price

    assert wire_price(Decimal("985.5")) == "985.5"
    assert wire_price(Decimal("1E+3")) == "1000"
    with pytest.raises(ValueError):
        wire_price(Decimal("NaN"))
