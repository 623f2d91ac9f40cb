"""The HSM market feed's dialect: its requests in the SDK's layout, and its decoder against documented
sample values (snapshot, update, lite update, precision and multiplier, unchanged fields, the
acknowledgement count) and against anything else (hypothesis: only MalformedFrame escapes)."""

from __future__ import annotations

import contextlib
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.families.stream import Decoded, MalformedFrame
from families.fyers import hsm
from tests.families.fyers import hsm_wire

RELIANCE = "10100000002885"
TOPIC = "sf|nse_cm|2885"
TOKEN_TEXT = "FYAPPID01-100:eyJ.token.sig"


def _dialect(symbols=None) -> hsm.HsmDialect:
    dialect = hsm.HsmDialect(
        url="ws://127.0.0.1:1/hsm/v1-5/prod",
        hsm_key="key123",
        token_text=TOKEN_TEXT,
        symbols=symbols if symbols is not None else {RELIANCE: "NSE:RELIANCE-EQ"},
    )
    dialect.opening()
    return dialect


def _snapshot(topic_id: int = 7, **values) -> bytes:
    fields = {"ltp": 123450, "exch_feed_time": 1_754_290_800, "vol_traded_today": 5000} | values
    return hsm_wire.snapshot(topic_id, TOPIC, fields, exchange_token="2885", symbol="RELIANCE-EQ")


def _scaled(packet: bytes, multiplier: int, precision: int) -> bytes:
    """The snapshot with another multiplier and precision (after type, id, topic, count, 21 fields, 2 bytes)."""
    at = 1 + 2 + 1 + len(TOPIC) + 1 + 21 * 4 + 2
    return packet[:at] + struct.pack(">HB", multiplier, precision) + packet[at + 3 :]


def test_the_opening_is_the_sdks_authentication_and_full_mode_requests():
    auth, mode = _dialect().opening()
    request = hsm_wire.read_request(auth)
    assert request.kind == 1 and request.fields == {1: b"key123", 2: b"P", 3: b"\x01", 4: b"terminal-fyers"}
    assert request.declared_length == 18 + len(b"key123") + len(b"terminal-fyers") - 2
    mode_request = hsm_wire.read_request(mode)
    assert mode_request.kind == 12 and mode_request.declared_length == 0
    assert mode_request.fields == {1: struct.pack(">Q", 1 << 11), 2: bytes([70])}


def test_subscriptions_name_hsm_topics_in_chunks_with_the_sdks_length():
    dialect = _dialect({RELIANCE: "NSE:RELIANCE-EQ", "10100000026000": "NSE:NIFTY50-INDEX"})
    tokens = [RELIANCE, "10100000026000", "99990000000001", "not-a-token"] + [f"1011250828{n:05d}" for n in range(1600)]
    messages = dialect.subscribe(tokens)
    topics = [topic for message in messages for topic in hsm_wire.read_topics(hsm_wire.read_request(message).fields[1])]
    assert topics[:3] == ["sf|nse_cm|2885", "if|nse_cm|NIFTY50", "sf|nse_fo|00000"] and len(topics) == 1602
    assert len(messages) == 2  # at most 1,500 topics a message
    first = hsm_wire.read_request(messages[0])
    assert first.kind == 4 and first.fields[2] == bytes([11])
    assert first.declared_length == (18 + len(first.fields[1]) + len(TOKEN_TEXT) + len("terminal-fyers")) & 0xFFFF


def test_a_snapshot_decodes_to_a_tick_scaled_by_precision_and_multiplier():
    values = {"bid_price": 123400, "ask_price": 123500, "bid_size": 7, "ask_size": 9, "OI": 0}
    values |= {"open_price": 120000, "high_price": 125000, "low_price": 119000, "prev_close_price": 121000}
    decoded = _dialect().decode(hsm_wire.data(1, [_snapshot(**values)]))
    (tick,) = decoded.ticks
    assert tick.token == RELIANCE and tick.ltp == Decimal("1234.50") and tick.volume == 5000
    assert (tick.bid, tick.ask, tick.bid_qty, tick.ask_qty) == (Decimal("1234"), Decimal("1235"), 7, 9)
    assert (tick.open, tick.high, tick.low, tick.close) == (Decimal(1200), Decimal(1250), Decimal(1190), Decimal(1210))
    assert tick.ts == datetime(2025, 8, 4, 7, 0, tzinfo=UTC)


def test_a_multiplier_and_precision_other_than_paise_scale_the_price():
    packet = _scaled(_snapshot(ltp=7_125_000), 4, 4)  # as a currency pair might
    (tick,) = _dialect().decode(hsm_wire.data(1, [packet])).ticks
    assert tick.ltp == Decimal("178.125")


def test_updates_carry_only_what_changed_and_lite_updates_the_last_price():
    dialect = _dialect()
    dialect.decode(hsm_wire.data(1, [_snapshot(bid_price=123400)]))
    (tick,) = dialect.decode(hsm_wire.data(2, [hsm_wire.update(7, {"ltp": 123600})])).ticks
    assert tick.ltp == Decimal("1236") and tick.bid == Decimal("1234") and tick.volume == 5000
    (tick,) = dialect.decode(hsm_wire.data(3, [hsm_wire.lite(7, 123700)])).ticks
    assert tick.ltp == Decimal("1237")


def test_a_snapshot_of_a_topic_never_subscribed_is_named_through_the_mapping():
    (tick,) = _dialect().decode(hsm_wire.data(1, [_snapshot()])).ticks
    assert tick.token == RELIANCE
    (unknown,) = _dialect({}).decode(hsm_wire.data(1, [_snapshot()])).ticks
    assert unknown.token == TOPIC  # the feed counts it as an unknown token


def test_an_update_of_a_topic_without_its_snapshot_is_skipped_and_counted():
    decoded = _dialect().decode(hsm_wire.data(1, [hsm_wire.update(3, {"ltp": 1}), hsm_wire.lite(4, 2)]))
    assert decoded.ticks == [] and decoded.skipped == 2


def test_every_nth_data_message_is_acknowledged_as_the_server_asked():
    dialect = _dialect()
    assert dialect.decode(hsm_wire.auth_response(ack_every=2)) == Decoded()
    assert dialect.decode(hsm_wire.data(10, [_snapshot()])).replies == []
    (ack,) = dialect.decode(hsm_wire.data(11, [hsm_wire.lite(7, 1)])).replies
    request = hsm_wire.read_request(ack)
    assert request.kind == 3 and request.fields == {1: struct.pack(">I", 11)} and request.declared_length == 9
    dialect.opening()  # a new connection starts the count afresh
    assert dialect.ack_every == 0


def test_a_refused_authentication_is_remembered():
    dialect = _dialect()
    dialect.decode(hsm_wire.auth_response(ok=False))
    assert dialect.refused == "N"


def test_answers_to_requests_decode_to_nothing():
    dialect = _dialect()
    for kind in (4, 5, 12):
        assert dialect.decode(hsm_wire.reply(kind)) == Decoded()


@pytest.mark.parametrize(
    "message",
    [
        "text",
        b"",
        b"\x00",
        b"\x00\x05\x63",  # an unknown type
        hsm_wire.data(1, [_snapshot()])[:-3],
        hsm_wire.data(1, [b"\x99"]),
        hsm_wire.data(1, [hsm_wire.snapshot(1, "zz|nse_cm|1", {}, exchange_token="1", symbol="X")]),
    ],
)
def test_messages_that_cannot_be_read_are_malformed(message):
    with pytest.raises(MalformedFrame):
        _dialect().decode(message)


def test_the_heartbeat_is_the_sdks_three_bytes():
    assert _dialect().heartbeat() == bytes([0, 1, 11]) and _dialect().heartbeat_interval == 10.0


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_are_malformed(data):
    try:
        decoded = _dialect().decode(data)
    except MalformedFrame:
        return
    assert isinstance(decoded, Decoded)


@given(
    ltp=st.integers(min_value=1, max_value=2**31 - 1),
    precision=st.integers(min_value=0, max_value=6),
    multiplier=st.integers(min_value=1, max_value=1000),
    cut=st.integers(min_value=0, max_value=200),
)
def test_valid_snapshots_decode_exactly_and_their_prefixes_never_raise_anything_else(ltp, precision, multiplier, cut):
    message = hsm_wire.data(1, [_scaled(_snapshot(ltp=ltp), multiplier, precision)])
    (tick,) = _dialect().decode(message).ticks
    assert tick.ltp == Decimal(ltp) / (Decimal(10) ** precision * multiplier)
    with contextlib.suppress(MalformedFrame):
        _dialect().decode(message[:cut])
