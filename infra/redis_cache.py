"""Django's Redis cache backend with one connection pool and one client per process.

Django builds a cache object per thread and per async context (``django.core.cache.caches``), and
each RedisCache object builds its own connection pool. Under ASGI every request runs in a fresh
context, so every request opened a new TCP connection to Redis (redis-py also reads its own package
metadata for each new connection) and built a new ``redis.Redis`` client for each command: about
1.5 ms of the web process's CPU on a request that reads its session and user from the cache.

Here the pool and the client are made once per Redis URL and process and shared by every cache
object (redis-py's pool and client are thread-safe; the pool starts afresh in a forked child).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

if TYPE_CHECKING:
    import redis

_clients: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


class RedisCacheClient(DjangoRedisCacheClient):
    # Set by Django's client; django-stubs leaves its private attributes out.
    _servers: list[str]
    _pool_class: type[redis.ConnectionPool]
    _pool_options: dict[str, Any]
    _client: type[redis.Redis]
    _get_connection_pool_index: Callable[[bool], int]

    def __init__(self, servers, **options) -> None:
        super().__init__(servers, **options)
        self._options_key = repr(sorted(self._pool_options.items()))  # once, not on every command

    def get_client(self, key=None, *, write=False):
        server = self._servers[self._get_connection_pool_index(write)]
        shared = (server, self._options_key)
        client = _clients.get(shared)
        if client is None:
            with _lock:
                client = _clients.get(shared)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    client = _clients[shared] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` sharing one pool per process (see above)."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
