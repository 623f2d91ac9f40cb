"""In the full stack a channel-layer receive must outlast its blocking pop, or idle consumers die."""

import pytest
from django.conf import settings


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis channel layer is configured only with REDIS_URL")
def test_the_redis_read_timeout_outlasts_the_channel_layer_blocking_pop():
    from channels_redis.core import RedisChannelLayer

    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert host["address"] == settings.REDIS_URL
    assert host["socket_timeout"] > RedisChannelLayer.brpop_timeout
