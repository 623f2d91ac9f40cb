"""XTS's Socket.IO streams: the Engine.IO 3 framing, the market-data messages against documented
sample values (1501 touchline, 1502 depth, 1512 LTP), the order events, and decoders fuzzed."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import BrokerRejected
from brokers.families.stream import Decoded, MalformedFrame
from families.xts.stream import MarketDialect, OrderDialect

# A 1501-json-full message in the shape of XTS's documentation (values as its example gives them).
TOUCHLINE = {
    "MessageCode": 1501, "MessageVersion": 4, "ApplicationType": 0, "TokenID": 0, "ExchangeSegment": 1,
    "ExchangeInstrumentID": 22, "ExchangeTimeStamp": 1205682251,
    "Touchline": {
        "BidInfo": {"Size": 1, "Price": 1629.05, "TotalOrders": 1, "BuyBackMarketMaker": 0},
        "AskInfo": {"Size": 25, "Price": 1630.0, "TotalOrders": 2, "BuyBackMarketMaker": 0},
        "LastTradedPrice": 1629.95, "LastTradedQunatity": 3, "TotalBuyQuantity": 0, "TotalSellQuantity": 0,
        "TotalTradedQuantity": 1086098, "AverageTradedPrice": 1640.24, "LastTradedTime": 1205682251,
        "LastUpdateTime": 1205682251, "PercentChange": -1.2, "Open": 1651, "High": 1657, "Low": 1625,
        "Close": 1649.65, "TotalValueTraded": None, "BuyBackTotalBuy": 0, "BuyBackTotalSell": 0,
    },
    "BookType": 1, "XMarketType": 1, "SequenceNumber": 1,
}  # fmt: skip


def _event(name, data, *, as_text=True):
    return "42" + json.dumps([name, json.dumps(data) if as_text else data])


@pytest.fixture
def subscribed():
    return []


@pytest.fixture
def market(subscribed):
    return MarketDialect(root="ws://127.0.0.1:1", token="tok", user_id="U1", subscriber=subscribed.append)


def test_the_handshake_is_the_documented_query_over_engine_io_3(market):
    url = urlsplit(market.url())
    assert url.path == "/apimarketdata/socket.io/"
    assert {k: v[0] for k, v in parse_qs(url.query).items()} == {
        "token": "tok", "userID": "U1", "publishFormat": "JSON", "broadcastMode": "Full", "EIO": "3",
        "transport": "websocket",
    }  # fmt: skip
    assert market.opening() == [] and market.heartbeat() == "2"
    order = urlsplit(OrderDialect(root="wss://x", token="t", user_id="U").url())
    assert order.path == "/interactive/socket.io/" and parse_qs(order.query)["apiType"] == ["INTERACTIVE"]


def test_the_touchline_decodes_to_the_documented_values(market):
    tick = market.decode(_event("1501-json-full", TOUCHLINE)).ticks[0]
    assert tick.token == "1_22" and tick.ltp == Decimal("1629.95")
    assert (tick.bid, tick.bid_qty, tick.ask, tick.ask_qty) == (Decimal("1629.05"), 1, Decimal("1630.0"), 25)
    assert (tick.open, tick.high, tick.low, tick.close) == (1651, 1657, 1625, Decimal("1649.65"))
    assert tick.volume == 1086098
    # seconds since 1980-01-01 00:00 IST
    assert tick.ts == datetime(2018, 3, 16, 10, 14, 11, tzinfo=UTC)


def test_the_time_is_counted_from_1980_in_india(market):
    payload = json.loads(json.dumps(TOUCHLINE))
    payload["Touchline"]["LastTradedTime"] = 0 + 19800 + 86400  # 1980-01-02 05:30 IST = 00:00 UTC
    tick = market.decode(_event("1501-json-full", payload)).ticks[0]
    assert tick.ts == datetime(1980, 1, 2, 0, 0, tzinfo=UTC)


def test_an_object_payload_is_read_as_well_as_a_json_text(market):
    assert market.decode(_event("1501-json-full", TOUCHLINE, as_text=False)).ticks[0].ltp == Decimal("1629.95")


def test_depth_and_ltp_messages(market):
    depth = {
        "MessageCode": 1502, "ExchangeSegment": 2, "ExchangeInstrumentID": 35001,
        "Bids": [{"Size": 75, "Price": 24000.1, "TotalOrders": 2}, {"Size": 0, "Price": 0, "TotalOrders": 0}],
        "Asks": [{"Size": 150, "Price": 24000.5, "TotalOrders": 1}],
        "Touchline": {"LastTradedPrice": 24000.3, "TotalTradedQuantity": 900, "LastTradedTime": 1400000000},
    }  # fmt: skip
    tick = market.decode(_event("1502-json-full", depth)).ticks[0]
    assert tick.token == "2_35001" and tick.ltp == Decimal("24000.3")
    assert [(lvl.price, lvl.quantity, lvl.orders) for lvl in tick.bids] == [(Decimal("24000.1"), 75, 2)]
    assert tick.bid == Decimal("24000.1") and tick.ask == Decimal("24000.5")
    ltp = {"MessageCode": 1512, "ExchangeSegment": 1, "ExchangeInstrumentID": 2885, "LastTradedPrice": 1234.5,
           "LastTradedQunatity": 10, "LastUpdateTime": 1400000000}  # fmt: skip
    assert market.decode(_event("1512-json-full", ltp)).ticks[0].ltp == Decimal("1234.5")


@pytest.mark.parametrize(
    ("packet", "replies"),
    [('0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":60000}', []), ("40", []), ("3", []),
     ("6", []), ("2", ["3"]), ("2probe", ["3probe"]), ("41", [])],
)  # fmt: skip
def test_engine_io_packets(market, packet, replies):
    decoded = market.decode(packet)
    assert decoded.replies == replies and not decoded.ticks


def test_other_events_and_partial_forms_are_ignored(market):
    for name in ("1501-json-partial", "1505-json-full", "1510-json-full", "joined", "success"):
        assert market.decode(_event(name, {"t": "1_22", "ltp": 1})) == Decoded()


@pytest.mark.parametrize(
    "bad",
    ["", "9", "4", "42", "42{", '42["1501-json-full"]', '42["1501-json-full", 5]', '42[1, "x"]', b"\x00\x01",
     _event("1501-json-full", {"ExchangeSegment": 99, "ExchangeInstrumentID": 1, "LastTradedPrice": 1}),
     _event("1501-json-full", {"ExchangeSegment": 1, "ExchangeInstrumentID": 1}),
     _event("1501-json-full", {"ExchangeSegment": 1, "ExchangeInstrumentID": 1, "LastTradedPrice": "abc"}),
     _event("1501-json-full", {"ExchangeSegment": 1, "ExchangeInstrumentID": 1, "LastTradedPrice": -1})],
)  # fmt: skip
def test_malformed_packets_are_malformed(market, bad):
    with pytest.raises(MalformedFrame):
        market.decode(bad)


def test_subscriptions_go_over_rest_in_the_documented_shape(market, subscribed):
    assert market.subscribe(["1_2885", "2_35001", "bad"]) == []
    assert subscribed == [
        [{"exchangeSegment": 1, "exchangeInstrumentID": 2885}, {"exchangeSegment": 2, "exchangeInstrumentID": 35001}]
    ]


def test_a_failed_subscription_is_retried_with_the_heartbeat_and_already_subscribed_counts_as_done():
    answers = [BrokerRejected("Network down"), None, BrokerRejected("Instrument Already Subscribed !")]
    sent = []

    def subscriber(instruments):
        sent.append(instruments)
        outcome = answers.pop(0)
        if outcome is not None:
            raise outcome

    dialect = MarketDialect(root="ws://h", token="t", user_id="u", subscriber=subscriber)
    dialect.subscribe(["1_2885"])
    assert dialect.heartbeat() == "2" and len(sent) == 2  # retried
    dialect.subscribe(["1_2885"])
    assert dialect.heartbeat() == "2" and len(sent) == 3  # nothing pending


def test_order_and_trade_events_are_order_updates():
    dialect = OrderDialect(root="ws://h", token="t", user_id="u")
    order = {"AppOrderID": 1, "OrderStatus": "New", "OrderUniqueIdentifier": "T1"}
    assert dialect.decode(_event("order", order)).orders == [order]
    assert dialect.decode(_event("trade", order, as_text=False)).orders == [order]
    for name in ("joined", "position", "tradeConversion", "logout"):
        assert dialect.decode(_event(name, {"x": 1})).orders == []


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_decoders_raise_nothing_but_malformed_frame(message):
    for dialect in (
        MarketDialect(root="ws://h", token="t", user_id="u", subscriber=lambda items: None),
        OrderDialect(root="ws://h", token="t", user_id="u"),
    ):
        with contextlib.suppress(MalformedFrame):
            assert isinstance(dialect.decode(message), Decoded)


@given(
    st.dictionaries(
        st.sampled_from(["ExchangeSegment", "ExchangeInstrumentID", "LastTradedPrice", "Touchline", "Bids", "BidInfo"]),
        st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
    )
)  # fmt: skip
def test_a_market_event_with_any_fields_decodes_or_is_malformed(payload):
    dialect = MarketDialect(root="ws://h", token="t", user_id="u", subscriber=lambda items: None)
    try:
        message = "42" + json.dumps(["1501-json-full", json.dumps(payload)])
    except ValueError:
        return
    with contextlib.suppress(MalformedFrame):
        dialect.decode(message)
