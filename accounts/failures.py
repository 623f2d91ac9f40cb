"""Failed credentials counted per client address, audited once a window, refused past a limit.

Every refused bearer token or API key used to write its own audit row, so one client sending bad
``Authorization`` headers could write thousands of permanent rows a second. Here failures are
counted per source (the client address from ``core.client_ip``; for IPv6 its /64, which
one client holds whole) in fixed windows of ``AUTH_FAILURE_WINDOW_SECONDS`` that start at the
source's first failure:

- the first failure of a window is audited at once, as it always was (``auth.token_denied``,
  ``apikey.denied``, ``auth.login_failed``); the later ones only increment counters;
- once the window is over, one ``auth.denied_repeated`` event records the whole window: the source,
  the number of attempts (the first one included) and how many of them were refused unexamined,
  the first and last time, the count of each action and reason, and up to five samples of what was
  presented, each the first 12 hex digits of its SHA-256 (never the credential itself). The window
  is written by the next failure from the source after it ended, or by the beat task
  ``accounts.tasks.auth_failures_flush`` (every 30 s), whichever comes first, so no count waits
  for a request that never comes;
- past ``AUTH_FAILURE_LIMIT`` failures in a window, a request from the source that carries a
  credential is answered ``429 too_many_failures`` with ``Retry-After`` before anything else runs:
  no query, no audit row, one counter incremented.

The counters live in Redis in the full stack (``REDIS_URL``, shared by every process; each step is
one Lua script, so concurrent processes never lose an increment nor audit a window twice) and in
this process's memory in standalone mode (one process). A valid credential never writes anything.

When Redis cannot be reached the limiter fails closed: a credential that fails is answered
``503 rate_limiter_unavailable`` and not audited (it is logged and counted in
``terminal_auth_failures_uncounted_total``). Auditing each failure instead would reopen exactly the
flood this module exists to stop, at the moment an attacker has made Redis unreachable. A valid
credential still works while Redis is down: the limiter only governs failures.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts import audit, metrics
from accounts.errors import RateLimiterUnavailable, TooManyFailures
from core.client_ip import client_ip

logger = logging.getLogger(__name__)

AGGREGATE_ACTION = "auth.denied_repeated"
MAX_SAMPLES = 5
SAMPLE_HEX_DIGITS = 12
# A window's counters outlive its end by this long, so that a beat that is down for a while still
# finds them; flushing deletes them at once.
RETENTION_SECONDS = 7 * 24 * 3600
FLUSH_BATCH = 500


def source_of(request: HttpRequest) -> str:
    """The client's address, or its /64 for IPv6; ``unknown`` when it cannot be determined."""
    address = client_ip(request)
    if not address:
        return "unknown"
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def sample_of(presented: str | None) -> str:
    """A short, one-way tag of a presented credential: the first hex digits of its SHA-256."""
    return hashlib.sha256((presented or "").encode("utf-8", "surrogatepass")).hexdigest()[:SAMPLE_HEX_DIGITS]


@dataclass
class Window:
    """One source's finished window, as the aggregate event records it."""

    source: str
    start: float
    first_at: float
    last_at: float
    count: int  # failures examined, the first (audited on its own) included
    refused: int  # requests answered 429 unexamined
    reasons: dict[str, int] = field(default_factory=dict)  # "<action>:<reason>" -> count
    samples: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        def at(seconds: float) -> datetime:
            return datetime.fromtimestamp(seconds, tz=UTC)

        return {
            "source": self.source,
            "attempts": self.count + self.refused,
            "count": self.count,
            "refused": self.refused,
            "first_at": at(self.first_at),
            "last_at": at(self.last_at),
            "window_seconds": settings.AUTH_FAILURE_WINDOW_SECONDS,
            "reasons": dict(sorted(self.reasons.items())),
            "samples": sorted(self.samples),
        }


class LimiterDown(Exception):
    """The shared counters cannot be reached."""


# --- standalone: this process's memory -----------------------------------------------------------
class MemoryStore:
    """Counters in this process (standalone mode runs one process), keyed by prefix and source."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], Window] = {}

    def check(self, *, prefix: str, source: str, now: float, window: int, limit: int) -> int:
        with self._lock:
            current = self._windows.get((prefix, source))
            if current is None or current.start + window <= now or current.count < limit:
                return 0
            current.refused += 1
            current.last_at = now
            return max(1, int(current.start + window - now + 0.999))

    def record(self, *, prefix: str, source: str, now: float, window: int, reason: str, sample: str):
        with self._lock:
            current = self._windows.get((prefix, source))
            ended = None
            if current is not None and current.start + window <= now:
                ended, current = current, None
            if current is None:
                current = self._windows[(prefix, source)] = Window(source, now, now, now, 0, 0)
            current.count += 1
            current.last_at = now
            current.reasons[reason] = current.reasons.get(reason, 0) + 1
            if sample not in current.samples and len(current.samples) < MAX_SAMPLES:
                current.samples.append(sample)
            return current.count, ended

    def take_finished(self, *, prefix: str, now: float, window: int) -> list[Window]:
        with self._lock:
            keys = [k for k, w in self._windows.items() if k[0] == prefix and w.start + window <= now]
            return [self._windows.pop(k) for k in keys[:FLUSH_BATCH]]

    def restore(self, *, prefix: str, finished: Window, window: int) -> None:
        with self._lock:
            self._windows.setdefault((prefix, finished.source), finished)


# --- full stack: Redis, one Lua script per step ---------------------------------------------------
# KEYS[1] the source's window (a hash); ARGV now, window, limit.
_CHECK = """
local v = redis.call('HMGET', KEYS[1], 'start', 'count')
if not v[1] then return 0 end
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local left = tonumber(v[1]) + window - now
if left <= 0 or tonumber(v[2] or '0') < tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'refused', 1)
redis.call('HSET', KEYS[1], 'last_at', ARGV[1])
return math.max(1, math.ceil(left))
"""
# KEYS[1] the source's window, KEYS[2] the index of windows by end; ARGV now, window, retention,
# reason, sample, source, max samples. Returns {count in the window, the ended window's fields or {}}.
_RECORD = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local start = redis.call('HGET', KEYS[1], 'start')
local ended = {}
if start and tonumber(start) + window <= now then
  ended = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  start = nil
end
if not start then
  redis.call('HSET', KEYS[1], 'start', ARGV[1], 'first_at', ARGV[1], 'count', 0, 'refused', 0, 'samples', 0)
  redis.call('ZADD', KEYS[2], now + window, ARGV[6])
end
local n = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSET', KEYS[1], 'last_at', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'r:' .. ARGV[4], 1)
if redis.call('HEXISTS', KEYS[1], 's:' .. ARGV[5]) == 0
   and tonumber(redis.call('HGET', KEYS[1], 'samples')) < tonumber(ARGV[7]) then
  redis.call('HSET', KEYS[1], 's:' .. ARGV[5], 1)
  redis.call('HINCRBY', KEYS[1], 'samples', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {n, ended}
"""
# KEYS[1] the index of windows by end; ARGV now, window, key prefix of the windows, batch.
# Returns {source, fields, source, fields, ...} of the windows taken (deleted).
_TAKE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, source in ipairs(due) do
  local key = ARGV[3] .. source
  local start = redis.call('HGET', key, 'start')
  if (not start) or tonumber(start) + window <= now then
    local fields = redis.call('HGETALL', key)
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], source)
    if #fields > 0 then
      table.insert(out, source)
      table.insert(out, fields)
    end
  end
end
return out
"""
# KEYS[1] the source's window, KEYS[2] the index; ARGV retention, end, source, then field, value, ...
_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


def _window_from(source: str, flat: list) -> Window:
    fields = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    return Window(
        source=source,
        start=float(fields["start"]),
        first_at=float(fields["first_at"]),
        last_at=float(fields.get("last_at", fields["first_at"])),
        count=int(fields.get("count", 0)),
        refused=int(fields.get("refused", 0)),
        reasons={k[2:]: int(v) for k, v in fields.items() if k.startswith("r:")},
        samples=[k[2:] for k in fields if k.startswith("s:")],
    )


class RedisStore:
    """Counters in Redis, shared by every process; any Redis error is raised as LimiterDown."""

    def __init__(self, url: str) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._check = self._client.register_script(_CHECK)
        self._record = self._client.register_script(_RECORD)
        self._take = self._client.register_script(_TAKE)
        self._restore = self._client.register_script(_RESTORE)

    def _run(self, script, keys: list[str], args: list[Any]):
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            raise LimiterDown(str(exc)) from exc

    def check(self, *, prefix: str, source: str, now: float, window: int, limit: int) -> int:
        return int(self._run(self._check, [f"{prefix}:w:{source}"], [now, window, limit]))

    def record(self, *, prefix: str, source: str, now: float, window: int, reason: str, sample: str):
        keys = [f"{prefix}:w:{source}", f"{prefix}:ends"]
        count, ended = self._run(
            self._record, keys, [now, window, RETENTION_SECONDS, reason, sample, source, MAX_SAMPLES]
        )
        return int(count), (_window_from(source, ended) if ended else None)

    def take_finished(self, *, prefix: str, now: float, window: int) -> list[Window]:
        flat = self._run(self._take, [f"{prefix}:ends"], [now, window, f"{prefix}:w:", FLUSH_BATCH])
        return [_window_from(flat[i].decode(), flat[i + 1]) for i in range(0, len(flat), 2)]

    def restore(self, *, prefix: str, finished: Window, window: int) -> None:
        """Put back a window whose aggregate could not be written, to be flushed again."""
        fields: dict[str, Any] = {
            "start": finished.start,
            "first_at": finished.first_at,
            "last_at": finished.last_at,
            "count": finished.count,
            "refused": finished.refused,
            "samples": len(finished.samples),
            **{f"r:{k}": v for k, v in finished.reasons.items()},
            **{f"s:{s}": 1 for s in finished.samples},
        }
        flat = [item for pair in fields.items() for item in pair]
        keys = [f"{prefix}:w:{finished.source}", f"{prefix}:ends"]
        try:
            restored = self._restore(
                keys=keys, args=[RETENTION_SECONDS, finished.start + window, finished.source, *flat]
            )
        except self._errors:
            restored = 0
        if not restored:  # Redis is gone too, or the source has begun a newer window meanwhile
            logger.error("auth failure window lost: %s", finished.payload())


_stores: dict[str, MemoryStore | RedisStore] = {}
_stores_lock = threading.Lock()


def _store() -> MemoryStore | RedisStore:
    url = settings.REDIS_URL or ""
    store = _stores.get(url)
    if store is None:
        with _stores_lock:
            store = _stores.setdefault(url, RedisStore(url) if url else MemoryStore())
    return store


def _now() -> float:
    return time.time()


def _prefix() -> str:
    return settings.AUTH_FAILURE_KEY_PREFIX


# --- the gate --------------------------------------------------------------------------------------
def failure_gate(request: HttpRequest) -> None:
    """Refuse a request carrying a credential when its source failed too often in this window.

    Raises TooManyFailures (429, with ``retry_after`` seconds) before any query is made. When the
    counters cannot be reached the request goes on: a valid credential still works, and a failure
    is refused by ``failure_record``.
    """
    try:
        retry_after = _store().check(
            prefix=_prefix(),
            source=source_of(request),
            now=_now(),
            window=settings.AUTH_FAILURE_WINDOW_SECONDS,
            limit=settings.AUTH_FAILURE_LIMIT,
        )
    except LimiterDown:
        return
    if retry_after:
        metrics.failures_refused_total.inc()
        raise TooManyFailures(
            "Too many failed credentials from this address; try again later.",
            extra={"retry_after": retry_after},
        )


def _aggregate(finished: Window) -> None:
    if finished.count + finished.refused > 1:  # a single failure has its own event already
        address = finished.source if "/" not in finished.source and finished.source != "unknown" else None
        audit.record(actor="anonymous", action=AGGREGATE_ACTION, payload=finished.payload(), ip=address)


def failure_record(
    *,
    request: HttpRequest,
    action: str,
    reason: str,
    presented: str | None,
    actor="anonymous",
    target=None,
    payload: Mapping[str, Any],
) -> None:
    """Count a failed credential of ``request``'s source; audit it as ``action`` if it is the first
    of its window (and the source's previous window, ended, as one aggregate event).

    Raises RateLimiterUnavailable (503) when the counters cannot be reached.
    """
    source = source_of(request)
    window = settings.AUTH_FAILURE_WINDOW_SECONDS
    try:
        count, ended = _store().record(
            prefix=_prefix(),
            source=source,
            now=_now(),
            window=window,
            reason=f"{action}:{reason}",
            sample=sample_of(presented),
        )
    except LimiterDown:
        metrics.failures_uncounted_total.inc()
        logger.warning("failed credential not audited, limiter down: %s %s from %s", action, reason, source)
        raise RateLimiterUnavailable("The service cannot check credentials right now; try again shortly.") from None
    if ended is not None:
        _aggregate(ended)
    if count == 1:
        audit.record(actor=actor, action=action, target=target, payload=payload, request=request)


def failures_flush() -> int:
    """Write one aggregate event for each window that has ended; return how many windows were taken.

    A window whose event cannot be written is put back to be flushed again. Raises LimiterDown when
    the counters cannot be reached (the next run takes the windows).
    """
    store, window = _store(), settings.AUTH_FAILURE_WINDOW_SECONDS
    taken = store.take_finished(prefix=_prefix(), now=_now(), window=window)
    for position, finished in enumerate(taken):
        try:
            _aggregate(finished)
        except Exception:
            for rest in taken[position:]:
                store.restore(prefix=_prefix(), finished=rest, window=window)
            raise
    return len(taken)
