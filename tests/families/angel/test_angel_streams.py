"""SmartWebSocketV2's packets and the order-update stream's messages, decoded as documented."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.families.stream import MalformedFrame
from families.angel.adapter import AngelAdapter
from families.angel.stream import AngelMarketDialect, decode_market, decode_orders, decode_packet, subscribe_messages
from tests.families.angel import wire

STAMP_MS = 1_767_000_000_123  # 2025-12-29 09:20:00.123 UTC


def _head(mode: int, exchange_type: int, token: bytes, ltp_paise: int) -> bytes:
    return struct.pack("<BB25sqqq", mode, exchange_type, token, 42, STAMP_MS, ltp_paise)


def test_an_ltp_packet_is_51_bytes_of_paise():
    packet = _head(1, 1, b"2885", 123_455)
    assert len(packet) == 51
    tick = decode_packet(packet)
    assert (tick.token, tick.ltp) == ("NSE:2885", Decimal("1234.55"))
    assert tick.ts == datetime.fromtimestamp(STAMP_MS / 1000, tz=UTC)


def test_a_quote_packet_adds_volume_and_the_days_prices():
    packet = _head(2, 2, b"35001", 2_400_050) + struct.pack(
        "<qqqddqqqq", 75, 2_399_000, 1_234_500, 5000.0, 7000.0, 2_390_000, 2_410_000, 2_380_000, 2_395_000
    )
    assert len(packet) == 123
    tick = decode_packet(packet)
    assert tick.token == "NFO:35001" and tick.ltp == Decimal("24000.50") and tick.volume == 1_234_500
    assert (tick.open, tick.high, tick.low, tick.close) == (
        Decimal("23900"),
        Decimal("24100"),
        Decimal("23800"),
        Decimal("23950"),
    )
    assert tick.bid is None and tick.bids == ()


def test_a_snap_quote_packet_adds_open_interest_and_five_levels_each_side():
    levels = [(1, 100, 99_995, 3), (1, 50, 99_990, 1), (0, 40, 100_005, 2), (0, 10, 100_010, 1)]
    levels += [(0, 0, 0, 0)] * 6
    packet = _head(3, 3, b"500325", 100_000)
    packet += struct.pack("<qqqddqqqq", 1, 99_900, 500, 1.0, 2.0, 99_000, 101_000, 98_000, 99_500)
    packet += struct.pack("<qqq", STAMP_MS, 7_500, 0)
    packet += b"".join(struct.pack("<HqqH", *level) for level in levels)
    packet += struct.pack("<qqqq", 110_000, 90_000, 150_000, 50_000)
    assert len(packet) == 379
    tick = decode_packet(packet)
    assert tick.token == "BSE:500325" and tick.oi == 7_500
    assert (tick.bid, tick.bid_qty, tick.ask, tick.ask_qty) == (Decimal("999.95"), 100, Decimal("1000.05"), 40)
    assert [level.price for level in tick.bids] == [Decimal("999.95"), Decimal("999.90")]
    assert [level.orders for level in tick.asks] == [2, 1]


def test_currency_derivatives_are_priced_in_a_ten_millionth_of_a_rupee():
    tick = decode_packet(_head(1, 13, b"1234", 834_512_500))
    assert (tick.token, tick.ltp) == ("CDS:1234", Decimal("83.45125"))


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        _head(1, 1, b"2885", 100)[:50],
        _head(2, 1, b"2885", 100),  # a QUOTE packet cut at the LTP's end
        _head(3, 1, b"2885", 100) + b"\x00" * 100,
        _head(9, 1, b"2885", 100),
        _head(1, 6, b"2885", 100),
        _head(1, 1, b"", 100),
        _head(1, 1, b"28\xff5", 100),
        _head(1, 1, b"2885", 10**18),
    ],
)
def test_a_packet_not_in_the_documented_layout_is_malformed(packet):
    with pytest.raises(MalformedFrame):
        decode_market(packet)


def test_pong_and_angels_error_answers_are_no_ticks():
    assert decode_market("pong").ticks == []
    error = {"correlationID": "abcde12345", "errorCode": "E1002", "errorMessage": "Invalid Request Payload."}
    assert decode_market(json.dumps(error)).ticks == []
    for text in ("{not json", "[1]", '{"x": 1}'):
        with pytest.raises(MalformedFrame):
            decode_market(text)


def test_subscriptions_group_tokens_by_exchange_type_in_snap_quote_mode():
    messages = [json.loads(m) for m in subscribe_messages(["NSE:2885", "NFO:35001", "NSE:1594", "bogus"])]
    assert messages == [
        {
            "correlationID": "sub0000000",
            "action": 1,
            "params": {
                "mode": 3,
                "tokenList": [
                    {"exchangeType": 1, "tokens": ["2885", "1594"]},
                    {"exchangeType": 2, "tokens": ["35001"]},
                ],
            },
        }
    ]
    assert len(subscribe_messages([f"NSE:{n}" for n in range(2500)])) == 3


def test_the_market_dialect_sends_the_documented_handshake_and_heartbeat():
    dialect = AngelMarketDialect("wss://example.invalid/smart-stream", {"Authorization": "Bearer j"})
    assert dialect.heartbeat() == "ping" and dialect.heartbeat_interval == 10.0 and dialect.opening() == ()


@given(packet=st.binary(max_size=420))
def test_random_bytes_are_a_tick_or_malformed(packet):
    try:
        decoded = decode_market(packet)
    except MalformedFrame:
        return
    assert all(
        tick.token.split(":")[0] in {"NSE", "NFO", "BSE", "BFO", "MCX", "NCDEX", "CDS"} for tick in decoded.ticks
    )


@given(
    ltp=st.decimals(min_value=Decimal("0.05"), max_value=Decimal("999999.95"), places=2),
    mode=st.sampled_from([1, 2, 3]),
)
def test_the_tests_encoder_and_the_decoder_agree(ltp, mode):
    tick = decode_packet(wire.encode(wire.Packet(token="2885", ltp=ltp), mode))
    assert tick.ltp == ltp and tick.token == "NSE:2885"


# --- order updates ---------------------------------------------------------------------------------


def _update(status: str, **fields) -> dict:
    data = {
        "variety": "NORMAL",
        "ordertype": "LIMIT",
        "producttype": "INTRADAY",
        "duration": "DAY",
        "price": 990.0,
        "triggerprice": 0,
        "quantity": "10",
        "tradingsymbol": "RELIANCE-EQ",
        "transactiontype": "BUY",
        "exchange": "NSE",
        "symboltoken": "2885",
        "ordertag": "a1b2c3d4e5f6a7b8c9d0",
        "averageprice": 0,
        "filledshares": "0",
        "unfilledshares": "10",
        "orderid": "261206000000101",
        "text": "",
        "status": status,
        "orderstatus": status,
        "updatetime": "06-Dec-2026 10:15:30",
        "exchorderupdatetime": "06-Dec-2026 10:15:31",
    }
    data.update(fields)
    return {"user-id": "A1234567", "status-code": "200", "order-status": "AB01", "error-message": "", "orderData": data}


def test_an_order_update_is_its_orders_status_and_filled_quantity():
    update = AngelAdapter.update_from_stream(7, _update("complete", filledshares="10", averageprice=990.0))
    assert update is not None
    assert (update.account_id, update.tag, update.broker_order_id, update.status) == (
        7,
        "a1b2c3d4e5f6a7b8c9d0",
        "261206000000101",
        "FILLED",
    )
    assert update.filled_quantity == 10 and update.fill is None
    assert update.ts == datetime(2026, 12, 6, 4, 45, 31, tzinfo=UTC)  # 10:15:31 IST


def test_a_rejection_carries_angels_reason():
    update = AngelAdapter.update_from_stream(7, _update("rejected", text="RMS:Margin Exceeds"))
    assert update is not None and update.status == "REJECTED" and update.message == "RMS:Margin Exceeds"


def test_updates_about_no_order_of_ours_or_in_transit_change_nothing():
    assert AngelAdapter.update_from_stream(7, _update("open", ordertag="")) is None
    assert AngelAdapter.update_from_stream(7, _update("modify pending")) is None
    for shape in (
        {},
        {"orderData": "x"},
        {"orderData": {"ordertag": "T1"}},
        {"orderData": {"ordertag": "T1", "orderid": "1", "quantity": "x"}},
    ):
        with pytest.raises(ValueError):
            AngelAdapter.update_from_stream(7, shape)


def test_the_order_stream_hands_on_order_messages_and_skips_its_greeting():
    message = json.dumps(_update("open"))
    assert decode_orders(message).orders == [json.loads(message, parse_float=Decimal)]
    greeting = {
        "user-id": "A1",
        "status-code": "200",
        "order-status": "AB00",
        "error-message": "",
        "orderData": {"orderid": ""},
    }
    assert decode_orders(json.dumps(greeting)).orders == []
    assert decode_orders("pong").orders == []
    for bad in ("{oops", "[]", '{"orderData": 1}', b"\xff\xfe"):
        with pytest.raises(MalformedFrame):
            decode_orders(bad)
