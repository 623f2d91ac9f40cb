"""The ticker's wire format against frames built from the documented layout (tests/kite/wire.py)."""

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kite import ticker
from kite.ticker import (
    BrokerMessage,
    DepthEntry,
    ErrorMessage,
    MalformedFrame,
    MalformedMessage,
    Mode,
    OrderUpdate,
    TickerProtocolError,
    UnknownMessage,
    decode_frame,
    mode_message,
    parse_text,
    subscribe_message,
    unsubscribe_message,
)
from tests.kite import wire
from tests.kite.wire import Level, Packet

NOON = datetime(2026, 11, 20, 6, 30, 5, tzinfo=UTC)  # 12:00:05 IST
RELIANCE = wire.token(2885, "NSE")
NIFTY = wire.token(1001, "INDICES")


def _full(token: int, **fields) -> Packet:
    base = dict(
        ltp=Decimal("1312.45"),
        last_quantity=25,
        average=Decimal("1309.80"),
        volume=4_250_017,
        buy_quantity=612_000,
        sell_quantity=598_450,
        open=Decimal("1301.00"),
        high=Decimal("1318.90"),
        low=Decimal("1299.15"),
        close=Decimal("1305.60"),
        last_trade_time=NOON,
        oi=0,
        timestamp=NOON,
        bids=[Level(Decimal("1312.40"), 120, 3), Level(Decimal("1312.35"), 75, 2)],
        asks=[Level(Decimal("1312.45"), 10, 1), Level(Decimal("1312.50"), 900, 12), Level(Decimal("1312.55"), 1, 1)],
    )
    base.update(fields)
    return Packet(token=token, **base)


def test_a_heartbeat_is_one_byte():
    assert decode_frame(wire.HEARTBEAT) == ticker.Frame(heartbeat=True)
    assert decode_frame(b"").heartbeat


def test_ltp_packet():
    frame = decode_frame(wire.frame(wire.ltp_packet(Packet(token=RELIANCE, ltp=Decimal("1312.45")))))
    (tick,) = frame.ticks
    assert tick == ticker.Tick(instrument_token=RELIANCE, mode=Mode.LTP, last_price=Decimal("1312.45"))
    assert tick.segment == ticker.Segment.NSE and tick.tradable


def test_index_quote_and_full_packets_put_high_low_open_close_in_that_order():
    packet = Packet(
        token=NIFTY,
        ltp=Decimal("26123.55"),
        high=Decimal("26201.10"),
        low=Decimal("25990.00"),
        open=Decimal("26010.25"),
        close=Decimal("26050.70"),
        change=Decimal("72.85"),
        timestamp=NOON,
    )
    quote, full = decode_frame(
        wire.frame(wire.index_packet(packet, full=False), wire.index_packet(packet, full=True))
    ).ticks
    for tick in (quote, full):
        assert (tick.last_price, tick.open, tick.high, tick.low, tick.close) == (
            Decimal("26123.55"),
            Decimal("26010.25"),
            Decimal("26201.10"),
            Decimal("25990.00"),
            Decimal("26050.70"),
        )
        assert tick.is_index and not tick.tradable and tick.bids == () and tick.volume_traded is None
    assert (quote.mode, quote.exchange_timestamp) == (Mode.QUOTE, None)
    assert (full.mode, full.exchange_timestamp) == (Mode.FULL, NOON)


def test_quote_packet():
    (tick,) = decode_frame(wire.frame(wire.quote_packet(_full(RELIANCE), full=False))).ticks
    assert tick == ticker.Tick(
        instrument_token=RELIANCE,
        mode=Mode.QUOTE,
        last_price=Decimal("1312.45"),
        last_traded_quantity=25,
        average_traded_price=Decimal("1309.80"),
        volume_traded=4_250_017,
        total_buy_quantity=612_000,
        total_sell_quantity=598_450,
        open=Decimal("1301.00"),
        high=Decimal("1318.90"),
        low=Decimal("1299.15"),
        close=Decimal("1305.60"),
    )


def test_full_packet_with_depth_open_interest_and_times():
    future = wire.token(53001, "NFO")
    (tick,) = decode_frame(
        wire.frame(wire.quote_packet(_full(future, oi=1_234_500, oi_high=1_300_000, oi_low=1_100_050), full=True))
    ).ticks
    assert tick.mode == Mode.FULL
    assert (tick.oi, tick.oi_day_high, tick.oi_day_low) == (1_234_500, 1_300_000, 1_100_050)
    assert tick.exchange_timestamp == tick.last_trade_time == NOON
    assert tick.bids[:2] == (DepthEntry(Decimal("1312.40"), 120, 3), DepthEntry(Decimal("1312.35"), 75, 2))
    assert tick.bids[2:] == (DepthEntry(Decimal(0), 0, 0),) * 3  # empty levels come as zeros
    assert tick.asks[:3] == (
        DepthEntry(Decimal("1312.45"), 10, 1),
        DepthEntry(Decimal("1312.50"), 900, 12),
        DepthEntry(Decimal("1312.55"), 1, 1),
    )
    assert len(tick.asks) == 5


@pytest.mark.parametrize(
    ("segment", "price"),
    [
        ("NSE", Decimal("1312.45")),
        ("NFO", Decimal("0.05")),
        ("BSE", Decimal("98765.40")),
        ("BFO", Decimal("512.35")),
        ("MCX", Decimal("72150.00")),
        ("MCXSX", Decimal("10.25")),
        ("INDICES", Decimal("81234.56")),
        ("CDS", Decimal("84.2375")),  # ÷ 10,000,000
        ("CDS", Decimal("83.0000001")),
        ("BCD", Decimal("84.2375")),  # ÷ 10,000
    ],
)
def test_price_divisor_by_segment(segment, price):
    instrument = wire.token(4321, segment)
    packet = _full(
        instrument,
        ltp=price,
        bids=[Level(price, 1, 1)],
        asks=[],
        **dict.fromkeys(("average", "open", "high", "low", "close"), price),
    )
    ltp, quote, full = decode_frame(
        wire.frame(wire.ltp_packet(packet), wire.quote_packet(packet, full=False), wire.quote_packet(packet, full=True))
    ).ticks
    assert ltp.last_price == quote.last_price == full.last_price == price
    assert full.bids[0].price == quote.average_traded_price == quote.close == price
    assert str(ltp.last_price) == str(price)


def test_currency_prices_keep_four_places_when_exact():
    packet = Packet(token=wire.token(1, "CDS"), ltp=Decimal("84.2375"))
    assert str(decode_frame(wire.frame(wire.ltp_packet(packet))).ticks[0].last_price) == "84.2375"


def test_a_negative_price_stays_negative():
    packet = Packet(token=wire.token(7, "MCX"), ltp=Decimal("-37.63"))
    assert decode_frame(wire.frame(wire.ltp_packet(packet))).ticks[0].last_price == Decimal("-37.63")


def test_several_packets_of_mixed_modes_in_one_frame():
    data = wire.frame(
        wire.ltp_packet(Packet(token=RELIANCE, ltp=Decimal(1))),
        wire.quote_packet(_full(wire.token(9, "BSE")), full=True),
        wire.index_packet(Packet(token=NIFTY, ltp=Decimal(2)), full=False),
    )
    assert [t.mode for t in decode_frame(data).ticks] == [Mode.LTP, Mode.FULL, Mode.QUOTE]


def test_a_packet_of_an_undocumented_length_is_skipped_and_counted():
    data = wire.frame(b"\x01" * 12, wire.ltp_packet(Packet(token=RELIANCE, ltp=Decimal(5))), b"")
    frame = decode_frame(data)
    assert frame.skipped == 2 and [t.last_price for t in frame.ticks] == [Decimal(5)]


@pytest.mark.parametrize("cut", [3, 5, 8, 20, 47, 100, 187])
def test_a_truncated_frame_raises(cut):
    data = wire.frame(wire.quote_packet(_full(RELIANCE), full=True))
    with pytest.raises(MalformedFrame):
        decode_frame(data[:cut])


def test_a_frame_claiming_more_packets_than_it_holds_raises():
    data = wire.frame(wire.ltp_packet(Packet(token=RELIANCE, ltp=Decimal(5))))
    with pytest.raises(MalformedFrame, match="packet 2 of 2"):
        decode_frame(b"\x00\x02" + data[2:])


# Property tests: no input makes the decoder fail any other way, and encoded fields come back exact.

prices = st.integers(min_value=-(2**31), max_value=2**31 - 1)
quantities = st.integers(min_value=0, max_value=2**32 - 1)
segments = st.sampled_from(sorted(wire.SEGMENTS))
times = st.one_of(
    st.none(), st.integers(min_value=1, max_value=2**32 - 1).map(lambda s: datetime.fromtimestamp(s, UTC))
)


@st.composite
def packets(draw) -> tuple[Packet, str]:
    instrument = wire.token(draw(st.integers(min_value=0, max_value=2**24 - 1)), draw(segments))
    divisor = wire.DIVISORS.get(instrument % 256, Decimal(100))

    def price():
        return Decimal(draw(prices)) / divisor

    levels = st.builds(lambda p, q, o: Level(Decimal(p) / divisor, q, o), prices, quantities, st.integers(0, 65535))
    packet = Packet(
        token=instrument,
        ltp=price(),
        last_quantity=draw(quantities),
        average=price(),
        volume=draw(quantities),
        buy_quantity=draw(quantities),
        sell_quantity=draw(quantities),
        open=price(),
        high=price(),
        low=price(),
        close=price(),
        change=price(),
        last_trade_time=draw(times),
        oi=draw(quantities),
        oi_high=draw(quantities),
        oi_low=draw(quantities),
        timestamp=draw(times),
        bids=draw(st.lists(levels, min_size=5, max_size=5)),
        asks=draw(st.lists(levels, min_size=5, max_size=5)),
    )
    return packet, draw(st.sampled_from(["ltp", "index-quote", "index-full", "quote", "full"]))


def _encode(packet: Packet, kind: str) -> bytes:
    return {
        "ltp": lambda: wire.ltp_packet(packet),
        "index-quote": lambda: wire.index_packet(packet, full=False),
        "index-full": lambda: wire.index_packet(packet, full=True),
        "quote": lambda: wire.quote_packet(packet, full=False),
        "full": lambda: wire.quote_packet(packet, full=True),
    }[kind]()


@settings(max_examples=120, deadline=None)
@given(st.lists(packets(), min_size=1, max_size=4))
def test_every_encoded_field_decodes_exactly(drawn):
    ticks = decode_frame(wire.frame(*(_encode(p, kind) for p, kind in drawn))).ticks
    assert len(ticks) == len(drawn)
    for tick, (p, kind) in zip(ticks, drawn, strict=True):
        assert (tick.instrument_token, tick.last_price) == (p.token, p.ltp)
        if kind.startswith("index"):
            assert (tick.open, tick.high, tick.low, tick.close) == (p.open, p.high, p.low, p.close)
            assert tick.exchange_timestamp == (p.timestamp if kind == "index-full" else None)
        if kind in ("quote", "full"):
            assert (tick.last_traded_quantity, tick.average_traded_price, tick.volume_traded) == (
                p.last_quantity,
                p.average,
                p.volume,
            )
            assert (tick.total_buy_quantity, tick.total_sell_quantity) == (p.buy_quantity, p.sell_quantity)
            assert (tick.open, tick.high, tick.low, tick.close) == (p.open, p.high, p.low, p.close)
        if kind == "full":
            assert (tick.oi, tick.oi_day_high, tick.oi_day_low) == (p.oi, p.oi_high, p.oi_low)
            assert (tick.last_trade_time, tick.exchange_timestamp) == (p.last_trade_time, p.timestamp)
            assert [(d.price, d.quantity, d.orders) for d in tick.bids + tick.asks] == [
                (lv.price, lv.quantity, lv.orders) for lv in p.bids + p.asks
            ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_decode_or_raise_the_protocol_error(data):
    try:
        frame = decode_frame(data)
    except MalformedFrame:
        return
    assert all(isinstance(t, ticker.Tick) for t in frame.ticks)


@settings(max_examples=80, deadline=None)
@given(st.lists(packets(), min_size=1, max_size=3), st.data())
def test_every_truncation_of_a_frame_raises(drawn, data):
    whole = wire.frame(*(_encode(p, kind) for p, kind in drawn))
    cut = data.draw(st.integers(min_value=2, max_value=len(whole) - 1))
    with pytest.raises(MalformedFrame):
        decode_frame(whole[:cut])


# Text messages.


def test_request_messages_are_the_documented_json():
    assert json.loads(subscribe_message([408065, 884737])) == {"a": "subscribe", "v": [408065, 884737]}
    assert json.loads(unsubscribe_message([408065])) == {"a": "unsubscribe", "v": [408065]}
    assert json.loads(mode_message("full", [408065])) == {"a": "mode", "v": ["full", [408065]]}
    assert json.loads(mode_message(Mode.LTP, (884737,))) == {"a": "mode", "v": ["ltp", [884737]]}
    with pytest.raises(ValueError):
        mode_message("depth", [1])
    with pytest.raises(ValueError):
        subscribe_message(["408065"])


def test_an_order_update_is_typed_and_keeps_every_field():
    data = {
        "order_id": "250101000000123",
        "exchange_order_id": "1100000012345678",
        "status": "COMPLETE",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "instrument_token": RELIANCE,
        "transaction_type": "BUY",
        "order_type": "LIMIT",
        "product": "CNC",
        "quantity": 10,
        "filled_quantity": 10,
        "pending_quantity": 0,
        "cancelled_quantity": 0,
        "price": 1312.45,
        "trigger_price": 0,
        "average_price": 1312.4,
        "order_timestamp": "2026-11-20 12:00:05",
        "exchange_timestamp": None,
        "tag": None,
        "checksum": "abc",
    }
    update = parse_text(json.dumps({"type": "order", "data": data}))
    assert isinstance(update, OrderUpdate)
    assert (update.order_id, update.status, update.exchange_order_id) == (
        "250101000000123",
        "COMPLETE",
        data["exchange_order_id"],
    )
    assert (update.quantity, update.filled_quantity, update.price, update.average_price) == (
        10,
        10,
        Decimal("1312.45"),
        Decimal("1312.4"),
    )
    assert update.order_timestamp == NOON and update.exchange_timestamp is None
    assert update.data["checksum"] == "abc"
    with pytest.raises(TypeError):
        update.data["status"] = "OPEN"  # read-only


def test_errors_and_messages():
    assert parse_text('{"type":"error","data":"Invalid access token"}') == ErrorMessage("Invalid access token")
    assert parse_text(b'{"type":"message","data":"Markets closed early"}') == BrokerMessage("Markets closed early")
    assert parse_text('{"type":"instruments_meta","data":{"count":1}}') == UnknownMessage(
        "instruments_meta", {"count": 1}
    )


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[]",
        '{"data":1}',
        '{"type":"order"}',
        '{"type":"order","data":{"status":"OPEN"}}',
        '{"type":"order","data":{"order_id":"1","status":"OPEN","quantity":"ten"}}',
        '{"type":"order","data":{"order_id":"1","status":"OPEN","price":"NaN"}}',
        '{"type":"order","data":{"order_id":"1","status":"OPEN","order_timestamp":"yesterday"}}',
        b"\xff\xfe",
        "[" * 100_000,
    ],
)
def test_malformed_text_raises_the_protocol_error(payload):
    with pytest.raises(MalformedMessage):
        parse_text(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=12,
)
order_fields = st.dictionaries(
    st.sampled_from(["order_id", "status", "quantity", "price", "instrument_token", "order_timestamp", "tag"]),
    json_values,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), json_values.map(json.dumps),
                 st.fixed_dictionaries({"type": st.sampled_from(["order", "error", "message"]), "data": order_fields})
                 .map(json.dumps)))  # fmt: skip
def test_any_text_parses_or_raises_the_protocol_error(payload):
    with contextlib.suppress(TickerProtocolError):
        parse_text(payload)
