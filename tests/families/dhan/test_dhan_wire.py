"""Dhan's wire format without a server: the mapping tables both ways, the error codes, the market
feed's packets against documented layouts (and fuzzed), the order-update stream, the security list."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import (
    BrokerInsufficientMargin,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSegmentNotEnabled,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from brokers.families.master import MasterRow
from brokers.families.stream import Decoded, MalformedFrame
from families.dhan import mapping
from families.dhan.adapter import DhanAdapter
from families.dhan.errors import answer, order_answer
from families.dhan.master import parse_master
from families.dhan.stream import MarketDialect, OrderDialect
from tests.families.dhan import server as ds
from tests.families.dhan import wire_format as wf


def _error(status: int, code: str, message: str = "message") -> bytes:
    return json.dumps({"errorType": "X", "errorCode": code, "errorMessage": message}).encode()


def test_the_mapping_tables_go_both_ways():
    for table, back in (
        (mapping.SEGMENTS, mapping.EXCHANGES),
        (mapping.PRODUCTS, mapping.PRODUCTS_BACK),
        (mapping.ORDER_TYPES, mapping.ORDER_TYPES_BACK),
    ):
        assert {back[value]: value for value in table.values()} == table
    assert set(mapping.PRODUCTS.values()) <= wf.PRODUCTS and set(mapping.ORDER_TYPES.values()) == wf.ORDER_TYPES
    assert {name: code for code, name in mapping.FEED_SEGMENTS.items()} == wf.FEED_CODES


@pytest.mark.parametrize(
    ("status", "order_type", "current", "ours"),
    [
        ("TRANSIT", "LIMIT", "OPEN", "OPEN"),
        ("TRANSIT", "LIMIT", "PARTIALLY_FILLED", "PARTIALLY_FILLED"),
        ("PENDING", "LIMIT", "OPEN", "OPEN"),
        ("PENDING", "STOP_LOSS", "OPEN", "TRIGGER_PENDING"),
        ("Pending", "SLM", "OPEN", "TRIGGER_PENDING"),
        ("PART_TRADED", "LIMIT", "OPEN", "PARTIALLY_FILLED"),
        ("Part Traded", "LMT", "OPEN", "PARTIALLY_FILLED"),
        ("TRADED", "MARKET", "OPEN", "FILLED"),
        ("CANCELLED", "LIMIT", "OPEN", "CANCELLED"),
        ("REJECTED", "LIMIT", "OPEN", "REJECTED"),
        ("EXPIRED", "LIMIT", "OPEN", "CANCELLED"),
        ("TRIGGERED", "LIMIT", "OPEN", "OPEN"),
        ("SOMETHING_NEW", "LIMIT", "TRIGGER_PENDING", "TRIGGER_PENDING"),
    ],
)
def test_statuses_map_and_transitional_ones_keep_the_current(status, order_type, current, ours):
    assert mapping.status_of(status, current=current, order_type=order_type) == ours


@pytest.mark.parametrize(
    ("status", "code", "message", "error"),
    [
        (401, "DH-901", "Client ID or user generated access token is invalid or expired.", BrokerSessionExpired),
        (403, "DH-902", "User has not subscribed to Data APIs", BrokerRejected),
        (400, "DH-903", "Segment is not activated for this account", BrokerSegmentNotEnabled),
        (429, "DH-904", "Too many requests", BrokerRateLimited),
        (400, "DH-904", "Too many requests", BrokerRateLimited),
        (400, "DH-905", "Missing required fields", BrokerRejected),
        (400, "DH-906", "Insufficient funds to place the order", BrokerInsufficientMargin),
        (400, "DH-907", "No data present", BrokerRejected),
        (500, "DH-908", "Internal server error", BrokerUnavailable),
        (502, "DH-909", "Network error", BrokerUnavailable),
        (500, "DH-910", "Other", BrokerUnavailable),
        (400, "DH-910", "Other", BrokerRejected),
        (401, "807", "Access token is expired", BrokerSessionExpired),
        (400, "806", "Data APIs not subscribed", BrokerRejected),
        (500, "800", "Internal Server Error", BrokerUnavailable),
    ],
)
def test_each_documented_error_is_its_typed_error_with_dhans_message(status, code, message, error):
    with pytest.raises(error) as raised:
        answer(status, "application/json", _error(status, code, message))
    assert type(raised.value) is error and raised.value.message == message
    if status != 429:
        assert raised.value.extra["error_code"] == code
    assert raised.value.code


def test_a_refusal_naming_no_order_on_a_cancel_is_order_not_found():
    with pytest.raises(BrokerOrderNotFound):
        order_answer(400, "application/json", _error(400, "DH-906", "Invalid Order Id"))
    with pytest.raises(BrokerRejected) as raised:
        answer(400, "application/json", _error(400, "DH-906", "Invalid Order Id"))
    assert type(raised.value) is BrokerRejected


@pytest.mark.parametrize("body", [b"", b"<html>", b'{"orderId": "1"', b"NaN"])
def test_an_answer_not_in_dhans_shape_is_maybe_sent(body):
    with pytest.raises(BrokerUnavailable):
        answer(200, "application/json", body)


def test_a_5xx_without_dhans_error_body_is_maybe_sent():
    with pytest.raises(BrokerUnavailable):
        answer(503, "application/json", b'{"orderId": "1"}')


@given(status=st.integers(100, 599), body=st.binary(max_size=200))
def test_any_answer_is_data_or_a_typed_error(status, body):
    from brokers.adapters.base import BrokerError

    with contextlib.suppress(BrokerError):
        answer(status, "application/json", body)


def _dialect() -> MarketDialect:
    return MarketDialect(url_base="wss://api-feed.dhan.co", client_id="1000000001", access_token="jwt")


def test_the_feed_url_and_subscriptions_are_as_documented():
    dialect = _dialect()
    assert dialect.url() == "wss://api-feed.dhan.co?version=2&token=jwt&clientId=1000000001&authType=2"
    tokens = [f"NSE_EQ:{n}" for n in range(1, 151)] + ["NSE_FNO:48225", "garbage"]
    messages = [json.loads(m) for m in dialect.subscribe(tokens)]
    assert [m["InstrumentCount"] for m in messages] == [100, 51]
    assert all(wf.check_subscription(m) == [] for m in messages)
    assert messages[1]["InstrumentList"][-1] == {"ExchangeSegment": "NSE_FNO", "SecurityId": "48225"}


def test_ticker_quote_and_full_packets_decode_to_documented_values():
    dialect = _dialect()
    frame = (
        wf.prev_close_packet("NSE_EQ", 2885, Decimal("2880.5"))
        + wf.oi_packet("NSE_FNO", 48225, 1500)
        + wf.ticker_packet("NSE_EQ", 2885, Decimal("2900.1"), ltt=1_765_000_000)
        + wf.quote_packet("BSE_EQ", 500325, Decimal("2899.95"), volume=321, ohlc=(2890, 2880.5, 2910, 2875.25))
        + wf.full_packet(
            "NSE_FNO",
            48225,
            Decimal("120.35"),
            volume=75000,
            oi=1800,
            depth=((75, 150, Decimal("120.3"), Decimal("120.4")),),
        )
    )
    decoded = dialect.decode(frame)
    assert decoded.skipped == 0
    ticker, quote, full = decoded.ticks
    assert (ticker.token, ticker.ltp, ticker.close) == ("NSE_EQ:2885", Decimal("2900.10"), Decimal("2880.50"))
    assert ticker.ts is not None and int(ticker.ts.timestamp()) == 1_765_000_000
    assert (quote.token, quote.ltp, quote.volume, quote.high, quote.low) == (
        "BSE_EQ:500325",
        Decimal("2899.95"),
        321,
        Decimal("2910.00"),
        Decimal("2875.25"),
    )
    assert (full.token, full.ltp, full.oi, full.bid, full.ask, full.bid_qty, full.ask_qty) == (
        "NSE_FNO:48225",
        Decimal("120.35"),
        1800,
        Decimal("120.30"),
        Decimal("120.40"),
        75,
        150,
    )


def test_a_disconnection_packet_is_no_tick_and_a_truncated_packet_is_skipped():
    dialect = _dialect()
    assert dialect.decode(wf.disconnect_packet(807)).ticks == []
    packet = wf.ticker_packet("NSE_EQ", 2885, Decimal("10"))
    assert dialect.decode(packet[:12]).skipped == 1
    with pytest.raises(MalformedFrame):
        dialect.decode("text")
    with pytest.raises(MalformedFrame):
        dialect.decode(b"\x02\x10")


@given(st.binary(max_size=600))
def test_random_bytes_decode_or_are_malformed_never_anything_else(data):
    try:
        decoded = _dialect().decode(data)
    except MalformedFrame:
        return
    assert isinstance(decoded, Decoded)


def test_the_order_stream_logs_in_and_hands_on_order_alerts():
    dialect = OrderDialect(url_base="wss://api-order-update.dhan.co", client_id="1000000001", access_token="jwt")
    (login,) = dialect.opening()
    assert wf.check_order_login(json.loads(login), "1000000001", "jwt") == []
    alert = {"Type": "order_alert", "Data": {"orderNo": "1", "status": "TRADED"}}
    assert dialect.decode(json.dumps(alert)).orders == [alert]
    assert dialect.decode('{"Type": "login_ack"}').orders == []
    for bad in ("not json", "[1]", '{"Type": "order_alert", "Data": 3}'):
        with pytest.raises(MalformedFrame):
            dialect.decode(bad)


def _alert(**data):
    base = {
        "orderNo": "112111182198",
        "status": "TRADED",
        "orderType": "LMT",
        "correlationId": "T0001",
        "tradedQty": 10,
        "lastUpdatedTime": "2026-12-07 09:15:00",
        "reasonDescription": "CONFIRMED",
    }
    return {"Type": "order_alert", "Data": {**base, **data}}


def test_an_order_alert_becomes_an_update_of_our_tagged_order():
    update = DhanAdapter.update_from_stream(7, _alert())
    assert (update.tag, update.broker_order_id, update.status, update.filled_quantity) == (
        "T0001",
        "112111182198",
        "FILLED",
        10,
    )
    assert update.ts.isoformat() == "2026-12-07T03:45:00+00:00"
    pascal = {
        "Type": "order_alert",
        "Data": {"OrderNo": "1", "Status": "Pending", "OrderType": "SL", "CorrelationId": "T2"},
    }
    assert DhanAdapter.update_from_stream(7, pascal).status == "TRIGGER_PENDING"
    assert DhanAdapter.update_from_stream(7, _alert(correlationId="")) is None
    assert DhanAdapter.update_from_stream(7, {"Type": "other"}) is None
    with pytest.raises(ValueError):
        DhanAdapter.update_from_stream(7, _alert(tradedQty=[1]))
    with pytest.raises(ValueError):
        DhanAdapter.update_from_stream(7, {"Type": "order_alert", "Data": {"status": "TRADED", "correlationId": "T"}})


def test_the_security_list_parses_with_bad_rows_named():
    rows = list(parse_master(ds.MASTER_CSV.encode()))
    assert MasterRow("NSE", "2885", "NSE_EQ:2885", "RELIANCE", "NSE_EQ") in rows
    assert MasterRow("BSE", "500325", "BSE_EQ:500325", "RELIANCE", "BSE_EQ") in rows
    assert MasterRow("NFO", "48225", "NSE_FNO:48225", "NIFTY-Dec2026-24000-CE", "NSE_FNO") in rows
    assert not any(isinstance(row, tuple) for row in rows) and len(rows) == 4  # the index row is passed over
    header = ds.MASTER_CSV.splitlines()[0]
    bad = f"{header}\nXYZ,E,1,EQUITY,,A\nNSE,E,abc,EQUITY,,B\nNSE,E,12,EQUITY,,\nNSE,E,2885,EQUITY,,RELIANCE\n"
    parsed = list(parse_master(bad.encode()))
    assert [row[0] for row in parsed if isinstance(row, tuple)] == [2, 3, 4]
    assert [row.token for row in parsed if isinstance(row, MasterRow)] == ["NSE_EQ:2885"]
    ((line, why),) = parse_master(b"a,b\n1,2\n")
    assert line == 1 and why.startswith("the header lacks SEM_EXM_EXCH_ID")


@pytest.mark.django_db
def test_a_short_security_list_is_refused_by_the_import():
    from brokers.families.master import MasterImportRefused, master_import

    header = ds.MASTER_CSV.splitlines()[0]
    with pytest.raises(MasterImportRefused):
        master_import("dhan", parse_master(f"{header}\n".encode()), min_rows=1)


@given(st.binary(max_size=400))
def test_any_security_list_parses_into_rows_or_named_errors(data):
    for row in parse_master(data):
        assert isinstance(row, MasterRow) or (isinstance(row, tuple) and isinstance(row[0], int))
