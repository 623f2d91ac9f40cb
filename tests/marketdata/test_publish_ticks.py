import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from accounts.models import User
from marketdata import fanout, quotes
from marketdata.consumers import TickConsumer
from marketdata.feeds.publisher import HEARTBEAT_KEY, Publisher, feed_status
from marketdata.listeners import register_tick_listener, unregister_tick_listener
from marketdata.models import Candle, Instrument
from marketdata.quotes import Quote


def _quote(instrument_id, ltp):
    return Quote(instrument_id=instrument_id, ltp=Decimal(ltp), ts=datetime.now(UTC), volume=5, close=Decimal("1"))


@pytest.mark.django_db
def test_listeners_see_each_batch_after_it_is_stored(settings):
    settings.REDIS_URL = None  # standalone path: memory store and the in-process hub
    seen = []
    register_tick_listener(
        "probe", lambda batch, passed: seen.append((batch, quotes.get_quote(batch[0].instrument_id)))
    )
    try:
        publisher = Publisher(source="test")
        publisher.publish([_quote(1, "10.5")])
        assert publisher.listeners.flush(timeout=5)
    finally:
        unregister_tick_listener("probe")
        publisher.close()
    batch, stored_at_dispatch = seen[0]
    assert stored_at_dispatch == batch[0]
    assert fanout.hub()._changed == {1: batch[0]}
    assert publisher.flush_candles() == 1
    assert Candle.objects.get(instrument_id=1).close == Decimal("10.5")


@pytest.mark.django_db
def test_the_feed_health_check_reports_a_stale_feed(client, settings):
    settings.REDIS_URL = None
    assert feed_status()["status"] == "not_running"
    Publisher(source="sim").publish([_quote(1, "10")])
    report = feed_status()
    assert report["status"] == "ok" and report["source"] == "sim" and report["lag_s"] < 5
    beat = cache.get(HEARTBEAT_KEY)
    cache.set(HEARTBEAT_KEY, {**beat, "at": beat["at"] - 120})
    assert feed_status()["status"] == "fail"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_in_the_full_stack_a_feed_process_reaches_sockets_through_redis(settings):
    settings.MARKETDATA_FRAME_MS = 50
    user = User.objects.create_user("trader", password="x-long-password-1")
    instrument = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="RELIANCE", exchange_token="2885", instrument_type="EQ"
    )

    async def scenario():
        socket = WebsocketCommunicator(TickConsumer.as_asgi(), "/ws/ticks/?format=json")
        socket.scope["user"] = user
        await socket.connect()
        await socket.send_json_to({"action": "subscribe", "instruments": [instrument.pk]})
        await socket.receive_json_from()
        publisher = Publisher(source="sim", store_candles=False)  # what run_feed does in its own process
        for attempt in range(50):  # until the hub's pub/sub subscription is live
            await asyncio.to_thread(publisher.publish, [_quote(instrument.pk, f"{1500 + attempt}")])
            try:
                frame = await socket.receive_json_from(timeout=0.2)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no frame arrived through Redis")
        assert frame["quotes"][0]["i"] == instrument.pk
        assert quotes._RedisStore(settings.REDIS_URL).get_many([instrument.pk])[instrument.pk].ltp >= 1500
        await socket.disconnect()
        hub = fanout.hub()
        hub._task.cancel()
        hub._listener.cancel()

    async_to_sync(scenario)()


def test_the_fan_out_message_carries_what_the_updates_show_and_rejects_malformed_batches():
    from marketdata.tick_channel import decode_batch, decode_row, encode_batch

    quote = Quote(
        instrument_id=7, ltp=Decimal("1550.05"), ts=datetime(2026, 11, 25, 4, 0, 0, 250000, tzinfo=UTC),
        bid=Decimal("1550"), volume=900, oi=3, close=Decimal("1500"),
    )  # fmt: skip
    (row,) = decode_batch(encode_batch([quote]))
    assert decode_row(row) == quote  # everything but depth, which stays in the quote store
    for bad in ("{}", "[[1, 2]]", "not json"):
        with pytest.raises(ValueError):
            decode_batch(bad)


def test_the_tick_channel_carries_the_redis_database_number():
    from marketdata.tick_channel import ticks_channel

    assert ticks_channel("redis://127.0.0.1:6379/3") == "marketdata:ticks:3"
    assert ticks_channel("redis://127.0.0.1:6379") == "marketdata:ticks:0"
    assert ticks_channel("redis://127.0.0.1:6379/3") != ticks_channel("redis://127.0.0.1:6379/4")


@pytest.mark.redis
@pytest.mark.django_db
def test_a_feed_on_another_redis_database_of_the_same_server_is_not_heard(settings):
    import redis

    from marketdata.tick_channel import ticks_channel

    ours = settings.REDIS_URL
    theirs = ours.rsplit("/", 1)[0] + "/" + ("14" if not ours.endswith("/14") else "15")
    listener = redis.Redis.from_url(ours).pubsub()
    listener.subscribe(ticks_channel(ours))
    listener.get_message(timeout=1)  # the subscription's confirmation
    settings.REDIS_URL = theirs
    Publisher(source="test", store_candles=False).publish([_quote(1, "10.5")])
    assert listener.get_message(timeout=0.5) is None
    settings.REDIS_URL = ours
    Publisher(source="test", store_candles=False).publish([_quote(1, "11")])
    message = listener.get_message(timeout=2)
    assert message is not None and message["channel"].decode() == ticks_channel(ours)
    listener.close()
