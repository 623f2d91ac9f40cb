import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from prometheus_client import REGISTRY

from accounts.models import User
from marketdata import fanout
from marketdata.consumers import TickConsumer
from marketdata.models import Instrument
from marketdata.quotes import Quote, set_quotes

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _manual_frames(settings):
    settings.MARKETDATA_FRAME_MS = 3_600_000  # frames only when a test calls hub.frame()


@pytest.fixture
def user():
    return User.objects.create_user("trader", password="x-long-password-1")


@pytest.fixture
def instruments():
    return [
        Instrument.objects.create(exchange="NSE", segment="NSE", tradingsymbol=symbol, exchange_token=str(token),
                                  instrument_type="EQ")
        for token, symbol in enumerate(["RELIANCE", "TCS", "INFY", "SBIN"], start=1)
    ]  # fmt: skip


def _socket(user, query="format=json"):
    communicator = WebsocketCommunicator(TickConsumer.as_asgi(), f"/ws/ticks/?{query}")
    communicator.scope["user"] = user
    return communicator


def _quote(instrument, ltp, *, seconds=0.0):
    return Quote(
        instrument_id=instrument.pk,
        ltp=Decimal(ltp),
        ts=NOW + timedelta(seconds=seconds),
        bid=Decimal(ltp) - Decimal("0.05"),
        ask=Decimal(ltp) + Decimal("0.05"),
        close=Decimal("100"),
        volume=10,
    )


def _dropped() -> float:
    return REGISTRY.get_sample_value("terminal_conflation_dropped_total") or 0.0


def test_an_unauthenticated_socket_is_closed():
    async def scenario():
        connected, code = await _socket(AnonymousUser()).connect()
        assert not connected and code == 4401

    async_to_sync(scenario)()


def test_a_client_gets_the_latest_quote_of_each_subscribed_instrument_per_frame(user, instruments):
    reliance, tcs, infy, _ = instruments

    async def scenario():
        socket = _socket(user)
        assert (await socket.connect())[0]
        await socket.send_json_to({"action": "subscribe", "instruments": [reliance.pk, "NSE:TCS"]})
        assert await socket.receive_json_from() == {
            "type": "subscribed",
            "instruments": sorted([reliance.pk, tcs.pk]),
            "count": 2,
        }
        hub = fanout.hub()
        hub.offer([_quote(reliance, "101"), _quote(infy, "50")])
        hub.offer([_quote(reliance, "102.5"), _quote(tcs, "99")])
        hub.frame()
        frame = await socket.receive_json_from()
        assert frame["type"] == "quotes"
        by_id = {q["i"]: q for q in frame["quotes"]}
        assert set(by_id) == {reliance.pk, tcs.pk}  # INFY is not subscribed
        assert by_id[reliance.pk]["ltp"] == "102.5" and by_id[reliance.pk]["ch"] == "2.5"
        assert by_id[reliance.pk]["pct"] == "2.50" and by_id[tcs.pk]["bid"] == "98.95"
        hub.frame()  # nothing changed: nothing sent
        assert await socket.receive_nothing(timeout=0.1)
        await socket.send_json_to({"action": "unsubscribe", "instruments": [tcs.pk]})
        assert (await socket.receive_json_from())["count"] == 1
        hub.offer([_quote(tcs, "98")])
        hub.frame()
        assert await socket.receive_nothing(timeout=0.1)
        await socket.disconnect()
        assert hub.subscriber_count(reliance.pk) == 0

    async_to_sync(scenario)()


def test_subscribing_sends_the_current_quotes_at_once(user, instruments):
    set_quotes([_quote(instruments[0], "120")])

    async def scenario():
        socket = _socket(user)
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [instruments[0].pk, instruments[1].pk]})
        await socket.receive_json_from()
        snapshot = await socket.receive_json_from()
        assert [q["ltp"] for q in snapshot["quotes"]] == ["120"]
        await socket.disconnect()

    async_to_sync(scenario)()


def test_html_clients_get_hx_swap_oob_fragments_with_stable_ids(user, instruments):
    reliance = instruments[0]

    async def scenario():
        socket = _socket(user, query="format=html")
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [reliance.pk]})
        await socket.receive_json_from()
        fanout.hub().offer([_quote(reliance, "97.5")])
        fanout.hub().frame()
        html = await socket.receive_from()
        assert f'<span id="q-{reliance.pk}-ltp" class="ltp down" hx-swap-oob="true">97.50</span>' in html
        assert f'id="q-{reliance.pk}-chg"' in html and "-2.50 (-2.50%)" in html
        await socket.disconnect()

    async_to_sync(scenario)()


def test_each_update_is_rendered_once_per_frame_and_shared(user, instruments, monkeypatch):
    renders = []
    real = fanout.get_template

    def counting(name):
        template = real(name)
        original = template.render

        def render(*args, **kwargs):
            renders.append(name)
            return original(*args, **kwargs)

        template.render = render
        return template

    monkeypatch.setattr(fanout, "get_template", counting)

    async def scenario():
        sockets = [_socket(user, query="format=html") for _ in range(5)]
        for socket in sockets:
            await socket.connect()
            await socket.send_json_to({"action": "subscribe", "instruments": [instruments[0].pk]})
            await socket.receive_json_from()
        fanout.hub().offer([_quote(instruments[0], "101")])
        fanout.hub().frame()
        frames = {await socket.receive_from() for socket in sockets}
        assert len(frames) == 1 and len(renders) == 1
        for socket in sockets:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_a_slow_reader_sees_only_the_latest_values_and_its_buffer_stays_bounded(user, instruments):
    reliance, tcs, *_ = instruments

    async def scenario():
        hub = fanout.hub()
        slow, fast = _socket(user), _socket(user)
        consumers = []
        for socket in (slow, fast):
            await socket.connect()
            await socket.send_json_to({"action": "subscribe", "instruments": [reliance.pk, tcs.pk]})
            await socket.receive_json_from()
            consumers.append(next(c for c in hub._subscribers[reliance.pk] if c not in consumers))
        slow_consumer, fast_consumer = consumers
        # The slow client's socket is backed up: Twisted calls pauseProducing on its write gate.
        slow_consumer._gate.pauseProducing()
        dropped_before = _dropped()
        for step in range(100):
            hub.offer([_quote(reliance, str(200 + step), seconds=step), _quote(tcs, str(300 + step), seconds=step)])
            hub.frame()
            await asyncio.sleep(0.001)  # between frames the event loop runs the clients' writes
            assert len(slow_consumer.pending) <= 2  # one pending update per subscribed instrument, never more
        assert _dropped() - dropped_before == 99 * 2
        # The other client was not held back: it got every frame.
        received = [await fast.receive_json_from() for _ in range(100)]
        assert received[-1]["quotes"][0]["ltp"] in {"299", "399"}
        assert fast_consumer.pending == {}
        assert await slow.receive_nothing(timeout=0.1)
        slow_consumer._gate.resumeProducing()  # the socket drained
        frame = await slow.receive_json_from()
        assert sorted(q["ltp"] for q in frame["quotes"]) == ["299", "399"]
        assert await slow.receive_nothing(timeout=0.1)
        for socket in (slow, fast):
            await socket.disconnect()

    async_to_sync(scenario)()


def test_an_unknown_instrument_gets_an_error_naming_it_and_the_socket_stays_open(user, instruments):
    async def scenario():
        socket = _socket(user)
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [instruments[0].pk, 999999, "NSE:NOPE"]})
        error = await socket.receive_json_from()
        assert error["type"] == "error" and error["code"] == "unknown_instrument"
        assert error["extra"]["instruments"] == [999999, "NSE:NOPE"]
        assert "999999" in error["message"] and "NSE:NOPE" in error["message"]
        assert fanout.hub().subscriber_count(instruments[0].pk) == 0  # nothing half-subscribed
        await socket.send_json_to({"action": "subscribe", "instruments": [instruments[0].pk]})
        assert (await socket.receive_json_from())["type"] == "subscribed"
        await socket.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"action": "subscribe"}',
        '{"action": "subscribe", "instruments": []}',
        '{"action": "subscribe", "instruments": [true]}',
        '{"action": "subscribe", "instruments": [{"id": 1}]}',
        '{"instruments": [1]}',
        " ",
        b"\x00binary",
        '{"action": "subscribe", "instruments": ["NSE:REL\\u0000IANCE"]}',  # a NUL PostgreSQL cannot hold
        '{"action": "subscribe", "instruments": ["NSE:\\ud800"]}',  # a lone surrogate no encoder takes
        '{"action": "subscribe\\udfff", "instruments": [1]}',
        '{"action": "subscribe", "instruments": [' + "[" * 100_000 + "]" * 100_000 + "]}",  # nesting too deep
        '{"action": "subscribe", "instruments": [' + "9" * 40 + "]}",  # no id is that large
        '{"action": "subscribe", "instruments": [-1]}',
        '{"action": "subscribe", "instruments": ["NSE:' + "X" * 500 + '"]}',
    ],
)
def test_a_malformed_frame_gets_an_error_frame_and_the_socket_stays_open(user, instruments, frame):
    async def scenario():
        socket = _socket(user)
        await socket.connect()
        await socket.send_to(**({"bytes_data": frame} if isinstance(frame, bytes) else {"text_data": frame}))
        error = await socket.receive_json_from()
        assert (error["type"], error["code"]) == ("error", "malformed_frame")
        await socket.send_json_to({"action": "dance", "instruments": [1]})
        assert (await socket.receive_json_from())["code"] == "unknown_action"
        await socket.send_json_to({"action": "subscribe", "instruments": ["NSE:RELIANCE"]})
        assert (await socket.receive_json_from())["type"] == "subscribed"
        await socket.disconnect()

    async_to_sync(scenario)()


def test_subscribing_past_the_per_client_limit_is_refused(user, instruments, settings):
    settings.MARKETDATA_MAX_SUBSCRIPTIONS = 3

    async def scenario():
        socket = _socket(user)
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [i.pk for i in instruments[:2]]})
        assert (await socket.receive_json_from())["count"] == 2
        await socket.send_json_to({"action": "subscribe", "instruments": [i.pk for i in instruments[2:]]})
        error = await socket.receive_json_from()
        assert error["code"] == "subscription_limit" and error["extra"] == {"limit": 3, "subscribed": 2}
        assert "at most 3 instruments" in error["message"]
        await socket.send_json_to({"action": "subscribe", "instruments": ["NSE:RELIANCE", "NSE:INFY"]})
        assert (await socket.receive_json_from())["count"] == 3  # RELIANCE was already counted
        await socket.disconnect()

    async_to_sync(scenario)()


def test_an_unknown_format_is_refused(user):
    async def scenario():
        socket = _socket(user, query="format=xml")
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from())["code"] == "unknown_format"
        assert (await socket.receive_output())["code"] == 4400

    async_to_sync(scenario)()


def test_the_client_gauge_counts_open_sockets(user):
    def gauge():
        return REGISTRY.get_sample_value("terminal_ws_clients", {"socket": "ticks"})

    async def scenario():
        before = gauge()
        socket = _socket(user)
        await socket.connect()
        assert gauge() == before + 1
        await socket.disconnect()
        assert gauge() == before

    async_to_sync(scenario)()


def test_a_batch_arriving_while_the_frame_loop_waits_for_one_releases_it_from_any_thread(instruments):
    reliance = instruments[0]

    async def scenario():
        hub = fanout.Hub(frame_seconds=3600)
        hub._loop = asyncio.get_running_loop()
        hub._arrival = first = hub._loop.create_future()
        hub.offer_rows([[reliance.pk, "101", None, None, 0, 0, None, NOW.timestamp()]])  # the Redis listener
        assert first.done() and hub._arrival is None
        hub._arrival = arrival = hub._loop.create_future()
        await asyncio.to_thread(hub.offer, [_quote(reliance, "102")])  # the feed's thread, standalone
        await arrival  # resolved on the loop
        assert hub._arrival is None and set(hub._changed) == {reliance.pk}

    async_to_sync(scenario)()


def test_a_tick_socket_holds_no_channel_layer_channel(user, instruments):
    async def scenario():
        socket = _socket(user)
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [instruments[0].pk]})
        await socket.receive_json_from()
        (consumer,) = fanout.hub()._subscribers[instruments[0].pk]
        assert consumer.channel_layer is None and not hasattr(consumer, "channel_name")
        await socket.disconnect()

    async_to_sync(scenario)()
