"""The Kite ticker feed end to end against the fake ticker on loopback (tests/kite/fake_ticker.py)."""

import random
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from kite.feed import Backoff, KiteTickerFeed, TickerCapacityExceeded, default_instrument_token, quote_from_tick
from kite.ticker import OrderUpdate, decode_frame
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote
from tests.kite import wire
from tests.kite.fake_ticker import ACCESS_TOKEN, API_KEY, FakeTicker, eventually
from tests.kite.wire import Level

NOON = datetime(2026, 11, 20, 6, 30, 5, tzinfo=UTC)
FAST = Backoff(initial=0.01, cap=0.05, jitter=0.5)


def _instrument(pk: int, exchange_token: int, *, exchange="NSE", kind="EQ", segment=None) -> Instrument:
    # Unsaved rows: the feed reads only their fields, so these tests need no database.
    return Instrument(
        pk=pk,
        exchange=exchange,
        segment=segment or exchange,
        tradingsymbol=f"SYM{pk}",
        exchange_token=str(exchange_token),
        instrument_type=kind,
    )


RELIANCE = _instrument(11, 2885)
NIFTY = _instrument(12, 256265 // 256, kind="INDEX", segment="INDICES")
USDINR = _instrument(13, 1234, exchange="CDS", kind="FUT", segment="CDS-FUT")


class Sink:
    """Collects batches and order updates, and notices a callback made while another runs."""

    def __init__(self) -> None:
        self.batches: list[list[Quote]] = []
        self.orders: list[OrderUpdate] = []
        self._running = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def on_quotes(self, batch: list[Quote]) -> None:
        with self._lock:
            self._running += 1
            self.overlapped |= self._running > 1
        self.batches.append(batch)
        with self._lock:
            self._running -= 1

    def quotes(self) -> list[Quote]:
        return [q for b in list(self.batches) for q in b]

    def latest(self, instrument_id: int) -> Quote | None:
        found = [q for q in self.quotes() if q.instrument_id == instrument_id]
        return found[-1] if found else None


@pytest.fixture
def server():
    with FakeTicker() as fake:
        fake.set_price(
            wire.token(2885, "NSE"),
            ltp=Decimal("1312.45"),
            volume=1000,
            buy_quantity=500,
            sell_quantity=700,
            open=Decimal("1301"),
            high=Decimal("1318.90"),
            low=Decimal("1299.15"),
            close=Decimal("1305.60"),
            timestamp=NOON,
            bids=[Level(Decimal("1312.40"), 120, 3)],
            asks=[Level(Decimal("1312.45"), 10, 1), Level(Decimal("1312.50"), 900, 12)],
        )
        fake.set_price(wire.token(1001, "INDICES"), ltp=Decimal("26123.55"), close=Decimal("26050.70"), timestamp=NOON)
        fake.set_price(wire.token(1234, "CDS"), ltp=Decimal("84.2375"), timestamp=NOON)
        yield fake


@pytest.fixture
def make_feed(server):
    feeds = []

    def make(sink: Sink, **options) -> KiteTickerFeed:
        options = {
            "api_key": API_KEY,
            "access_token": ACCESS_TOKEN,
            "url": server.url,
            "backoff": FAST,
            "rng": random.Random(7),
            "proxy": None,
            **options,
        }
        feed = KiteTickerFeed(on_quotes=sink.on_quotes, on_order_update=sink.orders.append, **options)
        feeds.append(feed)
        return feed

    yield make
    for feed in feeds:
        feed.stop(5)


def test_default_tokens_follow_the_segment_codes():
    assert default_instrument_token(_instrument(1, 1594)) == 408065  # the docs' INFY on NSE
    assert default_instrument_token(NIFTY) == 256265
    assert default_instrument_token(_instrument(2, 5, exchange="BSE")) == 5 * 256 + 4
    assert default_instrument_token(_instrument(3, 5, exchange="NFO", kind="FUT")) == 5 * 256 + 2
    assert default_instrument_token(_instrument(4, 5, exchange="MCX", kind="FUT")) == 5 * 256 + 7
    assert default_instrument_token(_instrument(5, "x")) is None  # type: ignore[arg-type]


def test_quotes_arrive_as_batches_in_the_chosen_mode(server, make_feed):
    sink = Sink()
    feed = make_feed(sink)
    feed.subscribe([RELIANCE, NIFTY, USDINR])
    feed.start()
    eventually(lambda: sink.latest(RELIANCE.pk) and sink.latest(RELIANCE.pk).bids, message="a full quote")
    (connection,) = server.connections
    assert connection.query == {"api_key": [API_KEY], "access_token": [ACCESS_TOKEN]}
    tokens = [wire.token(2885, "NSE"), 256265, wire.token(1234, "CDS")]
    assert connection.requests == [{"a": "subscribe", "v": tokens}, {"a": "mode", "v": ["full", tokens]}]
    assert connection.modes == dict.fromkeys(tokens, "full")

    quote = sink.latest(RELIANCE.pk)
    assert quote == Quote(
        instrument_id=RELIANCE.pk,
        ltp=Decimal("1312.45"),
        ts=NOON,
        bid=Decimal("1312.40"),
        ask=Decimal("1312.45"),
        bid_qty=500,
        ask_qty=700,
        volume=1000,
        open=Decimal("1301"),
        high=Decimal("1318.90"),
        low=Decimal("1299.15"),
        close=Decimal("1305.60"),
        bids=(DepthLevel(Decimal("1312.40"), 120, 3),),
        asks=(DepthLevel(Decimal("1312.45"), 10, 1), DepthLevel(Decimal("1312.50"), 900, 12)),
    )
    eventually(lambda: sink.latest(NIFTY.pk) and sink.latest(NIFTY.pk).ts == NOON, message="the index in full")
    assert (sink.latest(NIFTY.pk).ltp, sink.latest(NIFTY.pk).close) == (Decimal("26123.55"), Decimal("26050.70"))
    assert sink.latest(USDINR.pk).ltp == Decimal("84.2375")

    # One frame, one batch: the server answers each request with one frame of the tokens it named.
    before = len(sink.batches)
    server.set_price(wire.token(2885, "NSE"), ltp=Decimal("1313.00"))
    server.send_ticks()
    eventually(lambda: len(sink.batches) == before + 1, message="the next frame")
    assert {q.instrument_id for q in sink.batches[-1]} == {RELIANCE.pk, NIFTY.pk, USDINR.pk}
    assert not sink.overlapped


def test_ltp_mode_quotes_take_the_receipt_time(server, make_feed):
    sink = Sink()
    feed = make_feed(sink, mode="ltp")
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: server.connections and server.connections[0].modes.get(wire.token(2885, "NSE")) == "ltp")
    server.send_ticks()
    eventually(lambda: sink.latest(RELIANCE.pk) and sink.latest(RELIANCE.pk).volume == 0, message="an LTP quote")
    quote = sink.latest(RELIANCE.pk)
    assert quote.ltp == Decimal("1312.45") and quote.ts != NOON and quote.ts.tzinfo is UTC


def test_a_dropped_socket_reconnects_and_resubscribes(server, make_feed):
    sink = Sink()
    feed = make_feed(sink)
    feed.subscribe([RELIANCE, NIFTY])
    feed.start()
    eventually(lambda: sink.latest(RELIANCE.pk), message="first quotes")
    server.drop()
    eventually(lambda: len(server.open_connections()) == 1 and len(server.connections) == 2, message="a new socket")
    second = server.connections[1]
    eventually(lambda: second.modes == {wire.token(2885, "NSE"): "full", 256265: "full"}, message="resubscription")
    server.set_price(wire.token(2885, "NSE"), ltp=Decimal("1400.05"))
    server.send_ticks()
    eventually(lambda: sink.latest(RELIANCE.pk).ltp == Decimal("1400.05"), message="quotes after the reconnect")
    assert feed.stats.reconnects == 1 and feed.stats.connects == 2 and feed.is_alive()


def test_refused_connections_back_off_and_retry(server, make_feed):
    server.refuse_next(3)
    sink = Sink()
    feed = make_feed(sink)
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: sink.latest(RELIANCE.pk), message="quotes once the server lets the feed in")
    assert server.refused == 3 and server.handshakes == 4
    assert feed.stats.reconnects == 3 and feed.is_alive()


def test_the_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    backoff = Backoff(initial=1.0, cap=30.0, factor=2.0, jitter=0.25)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(12)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30]
    assert all(c * 0.75 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    assert [Backoff(jitter=0).delay(n, rng) for n in (0, 1, 2, 10, 1000)] == [1, 2, 4, 30, 30]


def test_a_refused_access_token_stops_the_feed(server, make_feed):
    sink = Sink()
    feed = make_feed(sink, access_token="expired")
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: not feed.is_alive(), message="the feed to give up")
    assert "403" in feed.failure and server.handshakes == 1 and not sink.batches
    feed.subscribe([NIFTY])  # recorded; nothing left to send it on


def test_tokens_beyond_a_connection_open_more_connections(server, make_feed):
    sink = Sink()
    feed = make_feed(sink, tokens_per_connection=2, max_connections=3)
    instruments = [_instrument(100 + n, 500 + n) for n in range(5)]
    for instrument in instruments:
        server.set_price(default_instrument_token(instrument), ltp=Decimal(100 + instrument.pk), timestamp=NOON)
    feed.subscribe(instruments[:3])
    feed.start()
    eventually(lambda: len(server.open_connections()) == 2, message="two connections")
    feed.subscribe(instruments[3:])  # while running: fills the second connection, opens a third
    eventually(lambda: len(server.open_connections()) == 3, message="three connections")
    tokens = [default_instrument_token(i) for i in instruments]
    assert feed.connection_tokens() == [tokens[:2], tokens[2:4], tokens[4:]]
    eventually(
        lambda: (
            sorted(sorted(c.modes) for c in server.open_connections()) == sorted([tokens[:2], tokens[2:4], tokens[4:]])
        ),
        message="each connection subscribed to its share",
    )
    eventually(lambda: all(sink.latest(i.pk) for i in instruments), message="quotes from every connection")
    assert sink.latest(instruments[4].pk).ltp == Decimal(104 + 100)

    with pytest.raises(TickerCapacityExceeded):  # 7 tokens > 3 connections of 2
        feed.subscribe([_instrument(200, 900), _instrument(201, 901)])
    assert feed.connection_tokens() == [tokens[:2], tokens[2:4], tokens[4:]]  # nothing changed
    feed.subscribe(instruments)  # the same instruments again: no new tokens, no error


def _metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_order_updates_errors_and_faults_never_end_the_connection(server, make_feed, caplog):
    malformed_before = _metric("terminal_kite_ticker_malformed_total", kind="frame")
    lag_before = _metric("terminal_kite_ticker_lag_seconds_count")
    sink = Sink()
    feed = make_feed(sink)
    feed.subscribe([RELIANCE])
    feed.start()
    # Both answers are in (to the subscribe, in quote mode, then to the mode request) once a full quote is.
    eventually(lambda: sink.latest(RELIANCE.pk) and sink.latest(RELIANCE.pk).bids, message="a full quote")
    batches = len(sink.batches)

    server.send_heartbeat()
    server.send_text("{not json")
    server.send_text({"type": "error", "data": "Too many requests"})
    server.send_raw(wire.frame(wire.quote_packet(server.packets[wire.token(2885, "NSE")], full=True))[:100])
    server.send_raw(wire.frame(b"\x00" * 12))  # a packet of no documented length
    server.send_order(order_id="250101000000123", status="COMPLETE", quantity=10, filled_quantity=10, price=1312.45)
    eventually(lambda: sink.orders, message="the order update")
    (update,) = sink.orders
    assert (update.order_id, update.status, update.filled_quantity, update.price) == (
        "250101000000123",
        "COMPLETE",
        10,
        Decimal("1312.45"),
    )
    stats = feed.stats
    assert (stats.heartbeats, stats.bad_messages, stats.errors, stats.malformed_frames, stats.skipped_packets) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert len(sink.batches) == batches  # none of it became quotes
    assert _metric("terminal_kite_ticker_malformed_total", kind="frame") == malformed_before + 1
    assert _metric("terminal_kite_ticker_lag_seconds_count") > lag_before
    server.set_price(wire.token(2885, "NSE"), ltp=Decimal("1320"))
    server.send_ticks()
    eventually(lambda: sink.latest(RELIANCE.pk).ltp == Decimal("1320"), message="quotes after the faults")
    assert feed.stats.connects == 1 and "Too many requests" in caplog.text


def test_a_slow_quote_callback_holds_up_neither_the_socket_nor_order_updates(server, make_feed):
    release = threading.Event()
    sink = Sink()

    def slow(batch):
        sink.on_quotes(batch)
        release.wait(10)

    feed = make_feed(sink, max_pending_batches=2)
    feed.on_quotes = slow
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: sink.batches, message="the first batch (the callback now blocks)")
    for price in range(1500, 1510):
        server.set_price(wire.token(2885, "NSE"), ltp=Decimal(price))
        server.send_ticks()
    server.send_order(order_id="1", status="OPEN")
    eventually(lambda: sink.orders, message="the order update while the quote callback is blocked")
    eventually(lambda: feed.stats.quotes >= 11, message="the socket read every frame")
    release.set()
    eventually(lambda: sink.latest(RELIANCE.pk).ltp == Decimal(1509), message="the latest quote after the backlog")
    assert feed.stats.conflated > 0 and not sink.overlapped


def test_stop_closes_the_sockets_and_ends_the_callbacks(server, make_feed):
    sink = Sink()
    feed = make_feed(sink)
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: sink.latest(RELIANCE.pk), message="first quotes")
    feed.stop(5)
    assert not feed.is_alive()
    eventually(lambda: not server.open_connections(), message="the server to see the socket closed")
    batches = len(sink.batches)
    server.send_ticks()
    server.send_order(order_id="2", status="OPEN")
    assert len(sink.batches) == batches and not sink.orders


def test_stop_hands_over_the_order_updates_already_received(server, make_feed):
    gate = threading.Event()
    sink = Sink()

    def slow(update):
        gate.wait(10)
        sink.orders.append(update)

    feed = make_feed(sink)
    feed.on_order_update = slow
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: sink.latest(RELIANCE.pk), message="the connection")
    server.send_order(order_id="1", status="OPEN")
    server.send_order(order_id="1", status="COMPLETE")
    eventually(lambda: feed.stats.order_updates == 2, message="both updates read")

    def release_once_the_sockets_are_closed():
        eventually(lambda: not feed._thread.is_alive(), message="the event loop to end")
        gate.set()

    threading.Thread(target=release_once_the_sockets_are_closed, daemon=True).start()
    feed.stop(10)
    assert [u.status for u in sink.orders] == ["OPEN", "COMPLETE"]


def test_stop_during_the_backoff_and_before_start():
    KiteTickerFeed(on_quotes=print, api_key="k", access_token="t").stop(1)  # never started
    sink = Sink()
    feed = KiteTickerFeed(
        on_quotes=sink.on_quotes,
        api_key="k",
        access_token="t",
        url="ws://127.0.0.1:9",  # nothing listens: every attempt fails
        backoff=Backoff(initial=30, cap=30),
        proxy=None,
    )
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: feed.stats.reconnects >= 1, message="a failed attempt")
    feed.stop(5)
    assert not feed.is_alive()


def test_quote_from_tick_drops_empty_levels_and_zero_prices():
    packet = wire.Packet(token=wire.token(5, "NFO"), ltp=Decimal("10.05"), timestamp=NOON, oi=75)
    (tick,) = decode_frame(wire.frame(wire.quote_packet(packet, full=True))).ticks
    quote = quote_from_tick(tick, instrument_id=1, received_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert (quote.bids, quote.asks, quote.bid, quote.ask) == ((), (), None, None)
    assert (quote.open, quote.close, quote.oi, quote.ts) == (None, None, 75, NOON)


def test_each_reconnect_is_reported_after_the_order_updates_before_it_but_not_the_first_connection(server, make_feed):
    sink, seen = Sink(), []
    feed = make_feed(sink, on_reconnect=lambda index: seen.append(("reconnect", index, len(sink.orders))))
    feed.subscribe([RELIANCE])
    feed.start()
    eventually(lambda: feed.stats.connects == 1, message="the first connection")
    server.send_order(order_id="1", status="OPEN")
    eventually(lambda: len(sink.orders) == 1, message="the order update")
    assert seen == []
    server.drop()
    eventually(lambda: seen == [("reconnect", 0, 1)], message="the reconnect")
    server.drop()
    eventually(lambda: len(seen) == 2, message="the second reconnect")
