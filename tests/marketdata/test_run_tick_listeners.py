"""The tick listeners (the paper exchange's matching) run on a worker of their own behind a bounded,
conflating hand-off: a stalled listener never delays the fan-out or blocks the feed, and the quotes it
missed still reach it as a range."""

import asyncio
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from accounts.models import User
from marketdata.consumers import TickConsumer
from marketdata.feeds.publisher import Publisher, feed_status
from marketdata.listeners import ListenerWorker, register_tick_listener, unregister_tick_listener
from marketdata.models import Instrument
from marketdata.quotes import Quote
from orders.services import place_order
from orders.states import Status
from paper.models import PaperOrder
from tests.trading_world import World, _fresh_trading_state  # noqa: F401  (autouse: quotes, limits, faults)

D = Decimal


def _quote(instrument_id, ltp, *, bid=None, ask=None):
    return Quote(
        instrument_id=instrument_id, ltp=D(ltp), ts=datetime.now(UTC), close=D("100"), volume=5,
        bid=None if bid is None else D(bid), ask=None if ask is None else D(ask),
    )  # fmt: skip


class Stall:
    """A listener stuck like a stalled database: its first call waits until ``release`` is set."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls: list = []

    def __call__(self, quotes, passed) -> None:
        self.calls.append((quotes, dict(passed)))
        self.entered.set()
        self.release.wait(60)


@pytest.fixture
def stall():
    stuck = Stall()
    register_tick_listener("stall", stuck)
    yield stuck
    stuck.release.set()
    unregister_tick_listener("stall")


@pytest.mark.django_db(transaction=True)
def test_a_stuck_listener_does_not_delay_the_ticks_to_a_subscribed_socket(settings, stall):
    settings.REDIS_URL = None  # standalone: the hub in this process
    settings.MARKETDATA_FRAME_MS = 50
    user = User.objects.create_user("trader")
    instrument = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="RELIANCE", exchange_token="2885", instrument_type="EQ"
    )
    publisher = Publisher(source="sim", store_candles=False)

    async def scenario():
        socket = WebsocketCommunicator(TickConsumer.as_asgi(), "/ws/ticks/?format=json")
        socket.scope["user"] = user
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [instrument.pk]})
        await socket.receive_json_from()

        async def delivered(price: str) -> None:
            """Wait for ``price`` on the socket: with the next frame (50 ms), slack for a busy machine. The
            subscription's snapshot of the current quote may come first, late, so earlier prices are skipped."""
            async with asyncio.timeout(1):
                while (await socket.receive_json_from())["quotes"][-1]["ltp"] != price:
                    pass

        await asyncio.to_thread(publisher.publish, [_quote(instrument.pk, "1500")])
        await delivered("1500")
        assert await asyncio.to_thread(stall.entered.wait, 5)  # the listeners are stuck from now on
        # The listener stays stuck for the rest of the test (up to a minute): whatever arrives came past it.
        for price in ("1501", "1502", "1503"):
            await asyncio.to_thread(publisher.publish, [_quote(instrument.pk, price)])
            await delivered(price)
        assert not stall.release.is_set() and len(stall.calls) == 1  # still stuck on the first batch
        await socket.disconnect()

    try:
        async_to_sync(scenario)()
        publisher.heartbeat(force=True)
        assert feed_status()["listener_lag_s"] > 0
    finally:
        stall.release.set()
        assert publisher.close()


def test_the_hand_off_keeps_the_newest_quote_and_the_range_of_the_quotes_it_replaced(stall):
    worker = ListenerWorker(run=stall)
    worker.offer([_quote(1, "100", bid="99.95", ask="100.05")])
    assert stall.entered.wait(5)
    worker.offer([_quote(1, "98", bid="97.95", ask="98.05"), _quote(2, "50")])  # the dip
    worker.offer([_quote(1, "103", bid="102.95", ask="103.05")])  # the spike
    worker.offer([_quote(1, "100.5", bid="100.45", ask="100.55")])  # where it is now
    stall.release.set()
    assert worker.flush(timeout=5)
    quotes, passed = stall.calls[1]
    assert {q.instrument_id: q.ltp for q in quotes} == {1: D("100.5"), 2: D("50")}
    assert set(passed) == {1}  # instrument 2 had one quote: nothing was replaced
    assert (passed[1].ltp_low, passed[1].ltp_high, passed[1].quotes) == (D("98"), D("103"), 2)
    assert (passed[1].buy_low, passed[1].sell_high) == (D("98.05"), D("102.95"))
    assert passed[1].since <= datetime.now(UTC)
    assert worker.stop(timeout=5)


def test_the_feed_thread_never_blocks_when_the_listeners_fall_behind(stall):
    worker = ListenerWorker(run=stall)
    worker.offer([_quote(1, "100")])
    assert stall.entered.wait(5)
    times: list[float] = []

    def feed():  # 500 batches of 500 instruments while the listener is stuck
        for step in range(500):
            batch = [_quote(instrument_id, str(100 + step % 7)) for instrument_id in range(500)]
            started = time.perf_counter()
            worker.offer(batch)
            times.append(time.perf_counter() - started)

    feeding = threading.Thread(target=feed)
    feeding.start()
    feeding.join(60)
    assert not feeding.is_alive() and len(times) == 500  # it never waited for the stuck listener
    assert sorted(times)[len(times) // 2] < 0.005  # a batch costs the feed a few dict updates per quote
    assert len(worker._pending) == 500  # bounded: one slot per instrument, however long the stall
    assert worker.lag() > 0
    stall.release.set()
    assert worker.flush(timeout=5)
    assert len(stall.calls) == 2 and len(stall.calls[1][0]) == 500
    assert worker.lag() == 0.0
    assert worker.stop(timeout=5)


def test_a_limit_crossed_while_matching_was_behind_fills_at_its_limit(transactional_db, stall):
    world = World()  # committed: the matching worker reads it on its own connection
    eq = world.equity
    world.quote(eq, 1000, bid=999.95, ask=1000.05, tick=False)
    buy = place_order(
        actor=world.trader, account=world.account, source="api",
        request=world.request(eq, price=D("990"), quantity=10),
    )  # fmt: skip
    stop = place_order(
        actor=world.trader, account=world.account, source="api",
        request=world.request(eq, side="SELL", order_type="SL", price=D("984"), trigger_price=D("985"), quantity=5),
    )  # fmt: skip
    assert buy.status == Status.OPEN and stop.status == Status.TRIGGER_PENDING
    publisher = Publisher(source="sim", store_candles=False)
    try:
        publisher.publish([_quote(eq.pk, "1000", bid="999.95", ask="1000.05")])
        assert stall.entered.wait(5)  # matching is stuck behind the stalled listener
        publisher.publish([_quote(eq.pk, "989.90", bid="989.85", ask="989.95")])  # crosses the buy limit
        publisher.publish([_quote(eq.pk, "984.90", bid="984.85", ask="984.95")])  # touches the stop's trigger
        publisher.publish([_quote(eq.pk, "1001", bid="1000.95", ask="1001.05")])  # back up before matching ran
        late = place_order(  # placed after the dip, still unmatched: it never rested through it
            actor=world.trader, account=world.account, source="api",
            request=world.request(eq, price=D("990"), quantity=1),
        )  # fmt: skip
        stall.release.set()
        assert publisher.listeners.flush(timeout=10)
    finally:
        stall.release.set()
        assert publisher.close()
    buy.refresh_from_db()
    assert buy.status == Status.FILLED and buy.average_price == D("990")  # at its limit, not at 989.95
    # Triggered by the price it touched in between; whether its limit was crossed after the trigger the
    # range cannot tell, so it filled as a limit on the newest quote (the bid, above its limit).
    paper_stop = PaperOrder.objects.get(tag=stop.broker_tag)
    assert paper_stop.status == "FILLED" and paper_stop.average_price == D("1000.95")
    late.refresh_from_db()
    assert late.status == Status.OPEN  # no fill from prices it was not there for
