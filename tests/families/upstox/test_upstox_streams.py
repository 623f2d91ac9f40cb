"""Upstox's market feed decoded from messages built by hand from the protobuf wire format (not from
the generated module), its subscription requests, and the portfolio stream's order updates."""

from __future__ import annotations

import contextlib
import json
import math
import struct
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.families.stream import Decoded, MalformedFrame
from families.upstox.adapter import UpstoxAdapter
from families.upstox.stream import MarketDialect, PortfolioDialect, decode_feed, decode_portfolio, portfolio_url
from marketdata.quotes import DepthLevel
from tests.families.upstox import feed_wire as fw

KEY = "NSE_EQ|INE002A01018"
LTT = 1_733_470_200_123  # 2024-12-06 07:30:00.123 UTC


def test_a_full_feed_decodes_with_depth_day_ohlc_volume_and_open_interest():
    market = fw.Market(
        ltp=2900.05,
        ltt=LTT,
        ltq=5,
        cp=2890.4,
        depth=[(10, 2900.0, 12, 2900.1), (3, 2899.95, 4, 2900.15)],
        day=(2880.0, 2910.5, 2875.25, 2900.05),
        vtt=123456,
        oi=789.0,
    )
    decoded = decode_feed(fw.response({KEY: market.feed()}, current_ts=LTT))
    (tick,) = decoded.ticks
    assert tick.token == KEY and tick.ltp == Decimal("2900.05") and tick.close == Decimal("2890.4")
    assert tick.ts == datetime(2024, 12, 6, 7, 30, 0, 123000, tzinfo=UTC)
    assert (tick.bid, tick.bid_qty, tick.ask, tick.ask_qty) == (Decimal("2900.0"), 10, Decimal("2900.1"), 12)
    assert tick.bids == (DepthLevel(Decimal("2900.0"), 10), DepthLevel(Decimal("2899.95"), 3))
    assert tick.asks[1] == DepthLevel(Decimal("2900.15"), 4)
    assert (tick.open, tick.high, tick.low) == (Decimal("2880.0"), Decimal("2910.5"), Decimal("2875.25"))
    assert (tick.volume, tick.oi) == (123456, 789)


def test_ltpc_and_index_feeds_decode_and_several_instruments_share_a_message():
    message = fw.response({KEY: fw.ltpc_feed(1234.5, LTT, 1230.0), "NSE_INDEX|Nifty 50": fw.index_feed(24150.35)})
    ticks = {tick.token: tick for tick in decode_feed(message).ticks}
    assert ticks[KEY].ltp == Decimal("1234.5") and ticks[KEY].close == Decimal("1230.0") and ticks[KEY].bids == ()
    assert ticks["NSE_INDEX|Nifty 50"].ltp == Decimal("24150.35") and ticks["NSE_INDEX|Nifty 50"].ts is None


def test_a_market_info_message_and_a_feed_without_a_price_carry_no_tick():
    assert decode_feed(fw.market_info({"NSE_EQ": 2, "NSE_FO": 2})).ticks == []
    assert decode_feed(fw.response({KEY: fw.ltpc_feed(0.0)})).ticks == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -5.0, 1e12])
def test_a_feed_with_an_impossible_price_is_skipped_and_counted(bad):
    message = fw.response({KEY: fw.f_bytes(1, fw.tag(1, 1) + struct.pack("<d", bad)), "NSE_EQ|X1": fw.ltpc_feed(10.0)})
    decoded = decode_feed(message)
    assert decoded.skipped == 1 and [t.token for t in decoded.ticks] == ["NSE_EQ|X1"]


@pytest.mark.parametrize("message", ["text", b"\xff\xff\xff\xff", fw.response({KEY: fw.ltpc_feed(10.0)})[:-3]])
def test_a_message_that_is_not_a_feed_response_is_malformed(message):
    with pytest.raises(MalformedFrame):
        decode_feed(message)


@given(st.binary(max_size=400))
def test_random_bytes_decode_or_are_malformed_never_anything_else(data):
    try:
        decoded = decode_feed(data)
    except MalformedFrame:
        return
    assert isinstance(decoded, Decoded)
    for tick in decoded.ticks:
        assert tick.ltp is not None and tick.ltp > 0


@given(ltp=st.decimals(min_value=Decimal("0.05"), max_value=Decimal("999999.95"), places=2))
def test_every_price_decodes_exactly(ltp):
    (tick,) = decode_feed(fw.response({KEY: fw.Market(ltp=float(ltp)).feed()})).ticks
    assert tick.ltp == ltp


def test_subscriptions_are_binary_json_in_batches(settings):
    settings.BROKER_ENDPOINTS = {"upstox": {"ws": "ws://127.0.0.1:1/v3/feed/market-data-feed"}}
    dialect = MarketDialect(broker="upstox", access_token="tok")
    keys = [f"NSE_EQ|K{i}" for i in range(250)]
    messages = dialect.subscribe(keys)
    assert len(messages) == 3 and all(isinstance(m, bytes) for m in messages)
    first = json.loads(messages[0])
    assert set(first) == {"guid", "method", "data"} and first["method"] == "sub"
    assert first["data"] == {"mode": "full", "instrumentKeys": keys[:100]}
    assert dialect.headers()["Authorization"] == "Bearer tok" and dialect.url().endswith("/market-data-feed")
    assert dialect.opening() == () and "tok" not in repr(dialect)


def test_the_portfolio_stream_asks_for_order_updates_on_the_api_host(settings):
    settings.BROKER_ENDPOINTS = {"upstox": {"api": "https://api.example.test", "order_ws": ""}}
    assert portfolio_url("upstox") == "wss://api.example.test/v2/feed/portfolio-stream-feed?update_types=order"
    assert PortfolioDialect(broker="upstox", access_token="t").subscribe(["x"]) == ()


# The webhook page's sample (the portfolio stream sends the same), with our tag.
SAMPLE = {
    "update_type": "order",
    "user_id": "UP1234",
    "userId": "UP1234",
    "exchange": "NSE",
    "instrument_token": "NSE_EQ|INE848E01016",
    "instrument_key": "NSE_EQ|INE848E01016",
    "trading_symbol": "NHPC-EQ",
    "tradingsymbol": "NHPC-EQ",
    "product": "D",
    "order_type": "MARKET",
    "average_price": 81.2,
    "price": 0,
    "trigger_price": 0,
    "quantity": 1,
    "disclosed_quantity": 0,
    "pending_quantity": 0,
    "transaction_type": "BUY",
    "order_ref_id": "57744821658411",
    "exchange_order_id": "1100000012345678",
    "parent_order_id": None,
    "validity": "DAY",
    "status": "complete",
    "is_amo": False,
    "variety": "SIMPLE",
    "tag": "T0042",
    "exchange_timestamp": "2024-02-21 14:40:03",
    "status_message": "",
    "order_id": "240221025997024",
    "order_request_id": "1",
    "order_timestamp": "2024-02-21 14:40:02",
    "filled_quantity": 1,
    "guid": None,
    "placed_by": "UP1234",
    "status_message_raw": None,
}


def test_an_order_update_becomes_a_broker_update():
    (message,) = decode_portfolio(json.dumps(SAMPLE)).orders
    update = UpstoxAdapter.update_from_stream(7, message)
    assert update is not None
    assert (update.account_id, update.tag, update.broker_order_id, update.status) == (
        7,
        "T0042",
        "240221025997024",
        "FILLED",
    )
    assert update.filled_quantity == 1 and update.fill is None
    assert update.ts == datetime(2024, 2, 21, 9, 10, 3, tzinfo=UTC)  # 14:40:03 IST


def test_updates_that_are_not_ours_or_not_orders_change_nothing():
    assert UpstoxAdapter.update_from_stream(7, {**SAMPLE, "tag": None}) is None
    assert decode_portfolio(json.dumps({"update_type": "position", "quantity": 1})).orders == []
    assert UpstoxAdapter.update_from_stream(7, {"update_type": "holding"}) is None
    transitional = UpstoxAdapter.update_from_stream(
        7, {**SAMPLE, "status": "put order req received", "filled_quantity": 0}
    )
    assert transitional is not None and transitional.status == "OPEN"


@pytest.mark.parametrize("message", ["not json", "[1, 2]", '{"update_type": "order"}', b"\xff\xfe"])
def test_a_portfolio_message_not_in_the_documented_shape_is_malformed(message):
    with pytest.raises(MalformedFrame):
        decode_portfolio(message)


@pytest.mark.parametrize(
    "change",
    [{"order_id": 5}, {"order_id": "a b"}, {"status": None}, {"filled_quantity": "x"}, {"filled_quantity": 1.5}],
)
def test_an_order_update_with_a_wrong_field_is_refused(change):
    with pytest.raises(ValueError):
        UpstoxAdapter.update_from_stream(7, {**SAMPLE, **change})


@given(st.dictionaries(st.sampled_from(list(SAMPLE)), st.none() | st.integers() | st.text(max_size=10) | st.floats()))
def test_any_order_update_shape_gives_an_update_none_or_a_value_error(fields):
    with contextlib.suppress(ValueError):
        UpstoxAdapter.update_from_stream(7, {**SAMPLE, **fields})
