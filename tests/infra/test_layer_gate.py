"""Group joins and leaves go through a gate per event loop, so a thousand sockets closing at once wait
their turn for the channel layer's Redis pool instead of failing with redis-py's MaxConnectionsError
(seen when a soak's 1,000 clients disconnected together)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from infra import sockets


class _CountingLayer:
    """A stand-in channel layer that only counts how many group calls are in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.calls = 0

    async def _call(self) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        self.calls += 1

    async def group_add(self, group: str, channel: str) -> None:
        await self._call()

    async def group_discard(self, group: str, channel: str) -> None:
        await self._call()


def test_no_more_than_the_gate_allows_are_in_flight_at_once():
    layer = _CountingLayer()

    async def main() -> None:
        await asyncio.gather(*(sockets.group_add(layer, f"g{n}", "c") for n in range(200)))
        await asyncio.gather(*(sockets.group_discard(layer, f"g{n}", "c") for n in range(200)))

    asyncio.run(main())
    assert layer.calls == 400
    assert layer.most == sockets.LAYER_CALLS_AT_ONCE


def test_each_event_loop_has_its_own_gate():
    layer = _CountingLayer()
    for _ in range(2):  # a semaphore bound to a closed loop would raise on the second
        asyncio.run(sockets.group_add(layer, "g", "c"))
    assert layer.calls == 2


@pytest.mark.redis
def test_a_thousand_sockets_leaving_at_once_all_leave_their_groups():
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    prefix = f"test-gate-{uuid.uuid4().hex}"
    layer = RedisChannelLayer(hosts=[{"address": settings.REDIS_URL}], prefix=prefix)
    group = "user.1"

    async def main() -> int:
        channels = [await layer.new_channel() for _ in range(1000)]
        await asyncio.gather(*(sockets.group_add(layer, group, channel) for channel in channels))
        await asyncio.gather(*(sockets.group_discard(layer, group, channel) for channel in channels))
        connection = layer.connection(layer.consistent_hash(group))
        left = await connection.zcard(layer._group_key(group))
        await layer.flush()
        return left

    assert asyncio.run(main()) == 0
