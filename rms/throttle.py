"""The orders-per-second governor: a sliding one-second window per (account, exchange segment).

Full stack: one Redis sorted set per key updated by a Lua script, atomic across every process and
timed by the Redis server's clock (the exchange measures on the broker's server clock, not ours).
If Redis cannot be reached the governor fails closed: ``ThrottleUnavailable``, and the order is
rejected. Standalone: the same window in this process's memory. Orders above the limit are rejected,
never queued.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings

WINDOW_SECONDS = 1.0


class ThrottleUnavailable(Exception):
    """The shared counter could not be reached; callers must reject the order."""


class LocalThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int) -> bool:
        """Return True and count the order if fewer than ``limit`` were let through in the last second."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True


_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now, tostring(now) .. ':' .. tostring(seq))
local ttl = math.floor(window / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""


class RedisThrottle:
    PREFIX = "rms:ops:"

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_SCRIPT)

    def acquire(self, key: str, limit: int) -> bool:
        """Return True and count the order if the shared window has room; raise ThrottleUnavailable."""
        full = self.PREFIX + key
        try:
            return bool(self._script(keys=[full, full + ":seq"], args=[limit, int(WINDOW_SECONDS * 1_000_000)]))
        except self._redis.RedisError as exc:
            raise ThrottleUnavailable(str(exc)) from exc


_throttle: LocalThrottle | RedisThrottle | None = None


def get_throttle() -> LocalThrottle | RedisThrottle:
    """Return the process's governor: Redis in the full stack, memory in standalone."""
    global _throttle
    if _throttle is None:
        _throttle = RedisThrottle(settings.REDIS_URL) if settings.REDIS_URL else LocalThrottle()
    return _throttle


def use(throttle: LocalThrottle | RedisThrottle | None) -> None:
    """Install a governor (None: back to the default on next use)."""
    global _throttle
    _throttle = throttle
