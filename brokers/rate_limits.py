"""Client-side rate limits for broker APIs, for any broker family.

A broker limits requests per account (or API key) and per endpoint class (quotes, orders, ...); over
the limit it answers 429. A client counts its own requests first so that it rarely hears a 429:
``limiter.acquire(key, limits)`` admits a request if every ``RateLimit`` has room in its sliding
window for ``key``, counts it in all of them at once, and otherwise waits for room (at most
``max_wait`` seconds in all) or raises ``BrokerRateLimited`` without the request being sent.

Limits that share a ``name`` share a counter: the Kite table (``kite/rate_limits.py``) gives
place, modify and cancel the same per-second and per-minute counters, and placing alone the daily one.

Full stack (``REDIS_URL`` set): one Redis sorted set per (key, limit) updated by a Lua script, atomic
across every process and timed by the Redis server's clock. If Redis cannot be reached the limiter
counts in this process instead (and logs it): the broker still enforces its own limits with a 429,
which the client maps to ``BrokerRateLimited`` (not sent), so the fallback can cost a refused request
but never an unknown one. Standalone: the same windows in this process's memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from brokers.adapters.base import BrokerRateLimited

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` requests in any ``window`` seconds, counted under ``name``."""

    name: str
    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or not self.name:
            raise ValueError(f"invalid rate limit {self!r}")


class RateLimiter(Protocol):
    def acquire(self, key: str, limits: Sequence[RateLimit]) -> None:
        """Count one request under ``key`` in every limit, waiting briefly for room; else raise
        ``BrokerRateLimited`` (nothing was sent)."""


class _WaitingLimiter:
    """The waiting policy shared by both limiters: ``_try`` admits or says how long until room."""

    def __init__(self, *, max_wait: float = DEFAULT_MAX_WAIT, sleep: Callable[[float], None] = time.sleep) -> None:
        self.max_wait = max_wait
        self._sleep = sleep

    def _try(self, key: str, limits: Sequence[RateLimit]) -> tuple[float, RateLimit | None]:
        raise NotImplementedError

    def acquire(self, key: str, limits: Sequence[RateLimit]) -> None:
        if not limits:
            return
        waited = 0.0
        while True:
            wait, binding = self._try(key, limits)
            if wait <= 0:
                return
            if waited + wait > self.max_wait:
                assert binding is not None
                raise BrokerRateLimited(
                    f"Rate limit reached: {binding.limit} requests per {binding.window:g} s ({binding.name}); "
                    "the request was not sent",
                    extra={"limit": binding.name, "retry_after": round(wait, 3)},
                )
            self._sleep(wait)
            waited += wait


class LocalRateLimiter(_WaitingLimiter):
    """Sliding windows in this process's memory (standalone, and the fallback when Redis is down)."""

    def __init__(
        self,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_wait=max_wait, sleep=sleep)
        self._clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _try(self, key: str, limits: Sequence[RateLimit]) -> tuple[float, RateLimit | None]:
        now = self._clock()
        with self._lock:
            wait, binding = 0.0, None
            windows = []
            for limit in limits:
                hits = self._hits.setdefault((key, limit.name), deque())
                while hits and hits[0] <= now - limit.window:
                    hits.popleft()
                windows.append(hits)
                if len(hits) >= limit.limit:
                    # Room comes when the oldest hit that keeps the window full leaves it.
                    until = hits[len(hits) - limit.limit] + limit.window - now
                    if until > wait:
                        wait, binding = until, limit
            if wait > 0:
                return wait, binding
            for hits in windows:
                hits.append(now)
            return 0.0, None


_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS - 1
local wait, binding = 0, 0
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local until_room = tonumber(oldest[2]) + window - now
    if until_room < 1 then until_room = 1 end
    if until_room > wait then
      wait = until_room
      binding = i
    end
  end
end
if wait > 0 then
  return {wait, binding}
end
local seq = redis.call('INCR', KEYS[n + 1])
local longest = 0
for i = 1, n do
  local window = tonumber(ARGV[2 * i])
  redis.call('ZADD', KEYS[i], now, now .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[i], math.floor(window / 1000) + 1000)
  if window > longest then longest = window end
end
redis.call('PEXPIRE', KEYS[n + 1], math.floor(longest / 1000) + 1000)
return {0, 0}
"""


class RedisRateLimiter(_WaitingLimiter):
    """Sliding windows in Redis, shared by every process (keys ``<prefix>{<key>}:<limit name>``)."""

    DEFAULT_PREFIX = "brokers:ratelimit:"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        fallback: LocalRateLimiter | None = None,
    ) -> None:
        import redis

        super().__init__(max_wait=max_wait, sleep=sleep)
        self._redis = redis
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_SCRIPT)
        self.prefix = prefix
        self._fallback = fallback or LocalRateLimiter(max_wait=max_wait, sleep=sleep)

    def _try(self, key: str, limits: Sequence[RateLimit]) -> tuple[float, RateLimit | None]:
        # One hash tag per key, so a cluster keeps all of a key's windows in one slot.
        base = f"{self.prefix}{{{key}}}:"
        keys = [base + limit.name for limit in limits] + [base + "seq"]
        args: list[int] = []
        for limit in limits:
            args += [limit.limit, int(limit.window * 1_000_000)]
        try:
            wait_us, index = self._script(keys=keys, args=args)
        except self._redis.RedisError as exc:
            logger.warning("rate limiter: Redis unreachable (%s), counting in this process", type(exc).__name__)
            return self._fallback._try(key, limits)
        wait_us, index = int(wait_us), int(index)
        if wait_us <= 0:
            return 0.0, None
        return wait_us / 1_000_000, limits[index - 1]


_limiter: RateLimiter | None = None
_limiter_lock = threading.Lock()


def get_rate_limiter() -> RateLimiter:
    """The process's limiter: Redis when ``settings.REDIS_URL`` is set, memory otherwise."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            _limiter = RedisRateLimiter(settings.REDIS_URL) if settings.REDIS_URL else LocalRateLimiter()
        return _limiter


def use_rate_limiter(limiter: RateLimiter | None) -> None:
    """Install a limiter for the process (None: the default again on next use)."""
    global _limiter
    with _limiter_lock:
        _limiter = limiter
