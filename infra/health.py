"""Dependency checks behind ``GET /api/health``.

Each check returns a dict with at least ``status`` ("ok", "fail" or "not_configured") and its
measurements. Apps add their own checks (the market feed's lag, say) with ``register_check`` from
their ``AppConfig.ready`` so that this module imports no domain app; the Celery queues are read
from the current Celery app (``infra.queues``), never from the project configuration.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from infra.queues import PUBLISHED_AT_HEADER, broker_url, queue_names
from infra.tasks import BEAT_HEARTBEAT_KEY

logger = logging.getLogger(__name__)

Check = Callable[[], dict[str, Any]]
_checks: dict[str, Check] = {}
_PROCESS_STARTED_AT = time.time()
_beat_expected_since: float | None = None  # standalone mode: set when beat starts in this process
# Kombu's Redis transport keeps one list per priority step; the base name holds priority 0.
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


_readiness: set[str] = set()  # the checks a web process needs to serve requests at all


def register_check(name: str, *, readiness: bool = False) -> Callable[[Check], Check]:
    """Register a check; ``readiness`` ones also decide ``/api/health/ready``, the probe that takes a
    web process in or out of the load balancer. Only what that process itself needs belongs there: a
    stopped beat or feed must raise an alert, not take every web process out of service at once."""

    def decorator(func: Check) -> Check:
        _checks[name] = func
        if readiness:
            _readiness.add(name)
        return func

    return decorator


def run_checks(*, readiness: bool = False) -> tuple[bool, dict[str, Any]]:
    """Run every check (only the readiness ones with ``readiness``); return (healthy, report). A check
    that raises counts as failed."""
    results: dict[str, Any] = {}
    for name, check in _checks.items():
        if readiness and name not in _readiness:
            continue
        try:
            results[name] = check()
        except Exception as exc:  # a broken dependency must be reported, never crash the probe
            logger.warning("health check %s failed", name, exc_info=True)
            results[name] = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"}
    failed = [name for name, result in results.items() if result["status"] == "fail"]
    return not failed, {"status": "fail" if failed else "ok", "failed": failed, "checks": results}


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@register_check("database", readiness=True)
def check_database() -> dict[str, Any]:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    latency = _elapsed_ms(started)
    status = "ok" if latency <= settings.HEALTH_DB_LATENCY_MS else "fail"
    return {"status": status, "vendor": connection.vendor, "latency_ms": latency}


def _redis_client():
    import redis

    if not settings.REDIS_URL:
        raise RuntimeError("REDIS_URL is not set")  # the checks that reach here have a Redis to ask
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


@register_check("redis", readiness=True)
def check_redis() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"status": "not_configured", "detail": "standalone mode: in-memory channel layer and cache"}
    started = time.perf_counter()
    _redis_client().ping()
    return {"status": "ok", "latency_ms": _elapsed_ms(started)}


def _queue_stats_redis() -> dict[str, dict[str, Any]]:
    client = _redis_client()
    stats = {}
    for queue in queue_names():
        depth = sum(client.llen(queue + suffix) for suffix in _REDIS_PRIORITY_SUFFIXES)
        oldest = client.lindex(queue, -1)  # LPUSH on publish, BRPOP on consume: the oldest is last
        stats[queue] = {"depth": depth, "oldest_age_s": _message_age(json.loads(oldest)) if oldest else None}
    return stats


def _queue_stats_memory() -> dict[str, dict[str, Any]]:
    from kombu.transport.memory import Channel

    stats = {}
    for queue in queue_names():
        pending = Channel.queues.get(queue)
        items = list(pending.queue) if pending is not None else []
        stats[queue] = {"depth": len(items), "oldest_age_s": _message_age(items[0]) if items else None}
    return stats


def _message_age(message: dict[str, Any]) -> float | None:
    published = (message.get("headers") or {}).get(PUBLISHED_AT_HEADER)
    return round(time.time() - float(published), 3) if published else None


@register_check("celery")
def check_celery() -> dict[str, Any]:
    broker = broker_url()
    if broker.startswith("memory://"):
        queues, transport = _queue_stats_memory(), "memory"
    else:
        queues, transport = _queue_stats_redis(), "redis"
    ages = [q["oldest_age_s"] for q in queues.values() if q["oldest_age_s"] is not None]
    oldest = max(ages) if ages else None
    status = "fail" if oldest is not None and oldest > settings.HEALTH_QUEUE_AGE_SECONDS else "ok"
    return {
        "status": status,
        "transport": transport,
        "depth": sum(q["depth"] for q in queues.values()),
        "oldest_age_s": oldest,
        "queues": queues,
    }


def expect_beat() -> None:
    """Hold this process to beat's heartbeat from now on: standalone mode calls it when it starts beat
    in-process (config.standalone); in full stack beat is always expected, from process start."""
    global _beat_expected_since
    _beat_expected_since = time.time()


@register_check("beat")
def check_beat() -> dict[str, Any]:
    """Fail when beat's heartbeat (infra.tasks.beat_heartbeat, run by a worker) is older than
    CELERY_BEAT_STALE_SECONDS. A process that has expected beat for less than that time passes without
    one: beat's first heartbeat is one schedule period after it starts."""
    since = _beat_expected_since if settings.STANDALONE else _PROCESS_STARTED_AT
    if since is None:
        return {"status": "not_configured", "detail": "standalone mode without the in-process beat"}
    now = time.time()
    stale_after = settings.CELERY_BEAT_STALE_SECONDS
    seen = cache.get(BEAT_HEARTBEAT_KEY)
    report = {"last_seen_s": round(now - seen, 1) if seen else None, "stale_after_s": stale_after}
    if seen and now - seen <= stale_after:
        return {"status": "ok", **report}
    if now - since <= stale_after:
        return {"status": "ok", "detail": "starting: no recent heartbeat yet", **report}
    detail = "no heartbeat since start-up" if not seen else f"no heartbeat for over {stale_after} s"
    return {"status": "fail", "detail": f"beat or the default queue's worker is down: {detail}", **report}
