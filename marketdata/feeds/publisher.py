"""What happens to every batch a feed produces, in order:

1. the last quote per instrument is stored (``quotes.set_quotes``: Redis or memory);
2. the batch goes to the websocket fan-out at once: the hub in this process (standalone) or a Redis
   pub/sub channel every web process's hub listens to (full stack);
3. the batch is handed to the tick listeners (the paper exchange's matching), which run on a worker
   thread of their own behind a conflating hand-off (``listeners.ListenerWorker``), so matching and
   its database transactions never delay a tick to a browser;
4. metrics: ticks ingested, feed lag; a heartbeat for the health check (at most once a second), which
   carries how far the listeners are behind;
5. 1-minute candles are folded in; every few seconds the changed bars are stored by a writer thread,
   so a slow database write never delays the ticks behind it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection

from marketdata import listeners, metrics, quotes
from marketdata.candles import CandleAggregator
from marketdata.fanout import hub
from marketdata.quotes import Quote
from marketdata.tick_channel import encode_batch, ticks_channel

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "marketdata:feed-heartbeat"


class Publisher:
    """Receives each batch from a feed (``publish`` is the feed's ``on_quotes``)."""

    def __init__(self, *, source: str, store_candles: bool = True, candle_flush_seconds: float = 5.0) -> None:
        self.source = source
        self.store_candles = store_candles
        self.candle_flush_seconds = candle_flush_seconds
        self.aggregator = CandleAggregator()
        self._last_flush = time.monotonic()
        self._last_heartbeat = 0.0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="candle-writer")
        self._writing: Future | None = None
        self.listeners = listeners.ListenerWorker()
        self._redis = None
        if settings.REDIS_URL:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            self._channel = ticks_channel()

    def publish(self, batch: list[Quote]) -> None:
        if not batch:
            return
        quotes.set_quotes(batch)
        self._fan_out(batch)
        self.listeners.offer(batch)
        metrics.TICKS_INGESTED.inc(len(batch))
        newest = max(quote.ts for quote in batch)
        lag = max((datetime.now(UTC) - newest).total_seconds(), 0.0)
        metrics.FEED_LAG.set(lag)
        self.heartbeat(newest=newest)
        if self.store_candles:
            self.aggregator.add(batch)
            if time.monotonic() - self._last_flush >= self.candle_flush_seconds and (
                self._writing is None or self._writing.done()
            ):
                self._last_flush = time.monotonic()
                self._writing = self._writer.submit(self._store, self.aggregator.drain())

    def _fan_out(self, batch: list[Quote]) -> None:
        if self._redis is not None:
            self._redis.publish(self._channel, encode_batch(batch))
        else:
            hub().offer(batch)

    def heartbeat(self, *, newest: datetime | None = None, force: bool = False) -> None:
        """Record that the feed is alive (and its newest tick time) for the health check; rate-limited."""
        now = time.time()
        if not force and now - self._last_heartbeat < 1.0:
            return
        self._last_heartbeat = now
        behind = self.listeners.lag()
        metrics.LISTENER_BEHIND.set(behind)
        value = {"source": self.source, "at": now, "listener_lag": behind}
        if newest is not None:
            value["tick_ts"] = newest.timestamp()
        try:
            previous = cache.get(HEARTBEAT_KEY) or {}
            if newest is None and "tick_ts" in previous:
                value["tick_ts"] = previous["tick_ts"]
            cache.set(HEARTBEAT_KEY, value, timeout=None)
        except Exception:  # the heartbeat is advisory; never let it stop the feed
            logger.warning("feed heartbeat failed", exc_info=True)

    def close(self, timeout: float = 5.0) -> bool:
        """Let the listeners finish what was handed to them (at most ``timeout``) and stop their thread;
        return False if they were still busy. The feed must have stopped."""
        if self.listeners.stop(timeout):
            return True
        logger.warning("tick listeners were still busy after %.1f s; their last quotes are not matched", timeout)
        return False

    def flush_candles(self) -> int:
        """Store the bars changed since the last flush now (waiting for a write under way); return how many."""
        if self._writing is not None:
            self._writing.result()
        self._last_flush = time.monotonic()
        return self._store(self.aggregator.drain())

    @staticmethod
    def _store(bars: list) -> int:
        """Upsert ``bars``; return how many. Errors are logged, not raised: candles never stop the feed."""
        from marketdata.services import candle_upsert_many

        if not bars:
            return 0
        try:
            if not connection.in_atomic_block:  # a long-lived feed thread: drop a connection past its age
                close_old_connections()
            return candle_upsert_many(bars=bars)
        except Exception:
            logger.exception("storing %d candles failed", len(bars))
            return 0


def feed_status() -> dict:
    """The ``feed`` health check: ok while a feed has sent a heartbeat recently, with its lag, and
    whether its tick listeners (the paper exchange's matching) keep up.

    Listeners behind by more than ``MARKETDATA_LISTENER_LAG_SECONDS`` are reported as
    ``"listeners": "behind"`` without failing the check: the web tier's readiness probe reads this
    report, and matching that lags in the feed process is no reason to stop serving pages. The
    ``terminal_tick_listener_behind_seconds`` gauge of the feed process is what to alert on.
    """
    beat = cache.get(HEARTBEAT_KEY)
    if not beat:
        return {"status": "not_running", "detail": "no feed has published yet"}
    age = time.time() - beat["at"]
    tick_age = time.time() - beat["tick_ts"] if "tick_ts" in beat else None
    stale = age > settings.MARKETDATA_FEED_STALE_SECONDS
    listener_lag = beat.get("listener_lag", 0.0)
    return {
        "status": "fail" if stale else "ok",
        "source": beat.get("source"),
        "heartbeat_age_s": round(age, 2),
        "lag_s": None if tick_age is None else round(tick_age, 2),
        "listener_lag_s": round(listener_lag, 2),
        "listeners": "behind" if listener_lag > settings.MARKETDATA_LISTENER_LAG_SECONDS else "ok",
    }
