"""A Redis that restarts empty forgets every socket's slot and channel-layer group while the sockets
stay open; each web process notices its marker is gone and registers its sockets again, so an open
user socket receives pushes again without reconnecting. A socket whose channel cannot be read (Redis
down) waits for it instead of ending with an error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from infra import sockets
from infra.consumers import UserConsumer
from orders import push
from orders.push import push_order_change
from orders.services import place_order
from tests.otp_session import login_with_otp
from tests.trading_world import World, _fresh_trading_state  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _own_slots(monkeypatch):
    monkeypatch.setattr(sockets, "KEY_PREFIX", f"test-sockets:{uuid.uuid4().hex}:")
    monkeypatch.setattr(sockets, "_slots_instance", None)
    monkeypatch.setattr(sockets, "RESTORE_CHECK_SECONDS", 0.1)


def _socket(client: Client) -> WebsocketCommunicator:
    from config.asgi import application

    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()), (b"origin", b"http://testserver")]
    return WebsocketCommunicator(application, "/ws/user/", headers=headers)


def _forget_everything(user_id: int) -> None:
    """What a Redis restarted without persistence holds of the user's sockets: nothing."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    layer = get_channel_layer()
    client.delete(
        f"{sockets.KEY_PREFIX}{user_id}",
        sockets._watcher().marker,
        *(layer._group_key(group) for group in (sockets.user_group(user_id), sockets.sockets_group(user_id))),
    )


@pytest.mark.redis
def test_an_open_user_socket_receives_pushes_again_after_redis_forgot_it(db):
    if settings.STANDALONE:
        pytest.skip("the full stack's Redis channel layer")
    world = World()
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    order = place_order(actor=world.trader, account=world.account, request=world.request(world.equity), source="web")
    assert push.flush()
    browser = login_with_otp(Client(), world.trader)

    async def scenario():
        user = _socket(browser)
        connected, _ = await user.connect()
        assert connected
        await sync_to_async(push_order_change)(order)
        assert f'id="order-{order.pk}"' in await user.receive_from(timeout=5)

        await sync_to_async(_forget_everything)(world.trader.pk)
        await asyncio.sleep(0.5)  # a few of the process's looks for its marker

        assert await sync_to_async(sockets.users_listening)([world.trader.pk]) == {world.trader.pk}
        await sync_to_async(push_order_change)(order)
        assert f'id="order-{order.pk}"' in await user.receive_from(timeout=5)
        await user.disconnect()

    async_to_sync(scenario)()


def test_a_user_socket_whose_channel_cannot_be_read_waits_for_it(monkeypatch):
    monkeypatch.setattr("infra.consumers.RECEIVE_RETRY_SECONDS", 0.01)
    calls = []

    async def receive():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("Redis is down")
        return {"type": "user.push", "html": "<tr>"}

    consumer = UserConsumer()
    consumer.channel_receive = receive  # as channels sets it
    assert async_to_sync(consumer.channel_receive)() == {"type": "user.push", "html": "<tr>"}
    assert len(calls) == 3
