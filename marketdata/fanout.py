"""The per-process tick hub: conflated fan-out of quotes to websocket clients.

One ``Hub`` per web process. It receives batches (from the feed thread in standalone mode, from the
Redis pub/sub channel in the full stack) and only records, per instrument, the latest quote since the
last frame. Once per frame (``MARKETDATA_FRAME_MS``, default 250 ms) it renders each changed
instrument's update once (an hx-swap-oob HTML fragment and a compact JSON object, each only if some
subscriber wants that format) and hands every subscribed client the shared payloads of its own
instruments. A client keeps at most one pending payload per instrument: when a newer one arrives
before the old was sent (the client's socket is backed up), the old is dropped and counted. So the
server holds, per client, at most one payload per subscribed instrument, however slow the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.template.loader import get_template

from marketdata import metrics
from marketdata.quotes import Quote
from marketdata.tick_channel import decode_batch, decode_row, ticks_channel

logger = logging.getLogger(__name__)

QUOTE_PARTIAL = "marketdata/quote.html#quote-oob"
ALIGN_WINDOW = 0.1  # a frame is cut on a batch's arrival up to this share of a frame before or after its due time


def change_pct(quote: Quote) -> Decimal | None:
    """Return the change from the previous close in per cent (2 places), or None without a close."""
    if not quote.close:
        return None
    return ((quote.ltp - quote.close) * 100 / quote.close).quantize(Decimal("0.01"))


def quote_context(quote: Quote, *, oob: bool) -> dict:
    """The context of the ``quote-oob`` partial, for the watchlist page (oob=False) and the socket."""
    change = quote.change
    direction = "flat" if not change else "up" if change > 0 else "down"
    return {"quote": quote, "change": change, "pct": change_pct(quote), "direction": direction, "oob": oob}


class Payload:
    """One instrument's update for one frame, rendered at most once per format and shared by all clients."""

    __slots__ = ("_html", "_json", "live", "quote", "ts")

    def __init__(self, quote: Quote, *, live: bool = True) -> None:
        self.quote = quote
        self.ts = quote.ts.timestamp()
        self.live = live  # False for the snapshot sent on subscribe, which is not a fresh tick
        self._json: str | None = None
        self._html: str | None = None

    @property
    def json(self) -> str:
        if self._json is None:
            quote = self.quote
            # Written out: every value is a number, a price string or null, so nothing needs escaping, and
            # this runs for every changed instrument of every frame.
            self._json = (
                f'{{"i":{quote.instrument_id},"ltp":"{quote.ltp:f}","ch":{_json_text(quote.change)},'
                f'"pct":{_json_text(change_pct(quote))},"bid":{_json_text(quote.bid)},"ask":{_json_text(quote.ask)},'
                f'"v":{quote.volume},"oi":{quote.oi},"ts":{round(self.ts * 1000)}}}'
            )
        return self._json

    @property
    def html(self) -> str:
        if self._html is None:
            self._html = get_template(QUOTE_PARTIAL).render(quote_context(self.quote, oob=True))
        return self._html


def _json_text(value: Decimal | None) -> str:
    return "null" if value is None else f'"{value:f}"'


def json_frame(payloads: list[Payload]) -> str:
    return '{"type":"quotes","quotes":[' + ",".join([p.json for p in payloads]) + "]}"


def html_frame(payloads: list[Payload]) -> str:
    return "".join([p.html for p in payloads])


class Subscriber(Protocol):
    """What the hub needs of a client (``marketdata.consumers.TickConsumer``)."""

    format: str
    pending: dict[int, Payload]  # instrument id -> the newest unsent update; the hub replaces older ones

    def wake(self) -> None:
        """Send what is pending when the socket can take it."""


class Hub:
    def __init__(self, *, frame_seconds: float) -> None:
        self.frame_seconds = frame_seconds
        self._lock = threading.Lock()  # offer() runs on the feed's thread in standalone mode
        self._changed: dict[int, Quote | list] = {}
        self._subscribers: dict[int, set[Subscriber]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrival: asyncio.Future | None = None  # set while the frame loop waits for a batch to cut on
        self.frames = 0

    # --- input ---------------------------------------------------------------------------------------
    def offer(self, batch: list[Quote]) -> None:
        """Record the batch's quotes as the latest per instrument; cheap and thread-safe."""
        with self._lock:
            for quote in batch:
                self._changed[quote.instrument_id] = quote
            arrival, self._arrival = self._arrival, None
        if arrival is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed under the feed: nothing waits any more
                self._loop.call_soon_threadsafe(_resolve, arrival)

    def offer_rows(self, rows: list[list]) -> None:
        """Record undecoded rows from the Redis channel; only rows still latest at a frame, of instruments
        someone subscribes to, are ever turned into quotes (most of a busy feed is conflated away)."""
        with self._lock:
            for row in rows:
                self._changed[row[0]] = row
            arrival, self._arrival = self._arrival, None
        if arrival is not None:
            _resolve(arrival)  # on the loop's own thread

    # --- subscriptions -------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber, instrument_ids: set[int]) -> None:
        for instrument_id in instrument_ids:
            self._subscribers[instrument_id].add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, instrument_ids: set[int]) -> None:
        for instrument_id in instrument_ids:
            subscribers = self._subscribers.get(instrument_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[instrument_id]

    def subscriber_count(self, instrument_id: int) -> int:
        return len(self._subscribers.get(instrument_id, ()))

    # --- frames --------------------------------------------------------------------------------------
    def frame(self) -> int:
        """Deliver the updates changed since the last frame; return how many payloads were handed out."""
        with self._lock:
            changed, self._changed = self._changed, {}
        self.frames += 1
        touched: set[Subscriber] = set()
        handed = dropped = 0
        for instrument_id, item in changed.items():
            subscribers = self._subscribers.get(instrument_id)
            if not subscribers:
                continue
            try:
                payload = Payload(item if isinstance(item, Quote) else decode_row(item))
            except (ValueError, TypeError, ArithmeticError):
                logger.warning("ignored a malformed tick for instrument %s", instrument_id)
                continue
            # The innermost loop of the fan-out (subscribers x changed instruments each frame): the
            # subscriber's pending dict is filled here rather than through a method call per pair.
            for subscriber in subscribers:
                pending = subscriber.pending
                if instrument_id in pending:
                    dropped += 1
                pending[instrument_id] = payload
            touched |= subscribers
            handed += len(subscribers)
        if dropped:
            metrics.CONFLATION_DROPPED.inc(dropped)
        for subscriber in touched:
            subscriber.wake()
        return handed

    def ensure_running(self) -> None:
        """Start the frame loop (and, in the full stack, the Redis listener) on the running event loop."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._arrival = None
        self._task = loop.create_task(self._run_frames(), name="tick-hub-frames")
        if settings.REDIS_URL:
            self._listener = loop.create_task(self._listen_redis(), name="tick-hub-redis")

    async def _run_frames(self) -> None:
        """Cut a frame every ``frame_seconds`` on average, each on the arrival of a batch.

        A feed delivers in batches (the simulator every 50 ms, a broker's ticker per packet). A frame cut
        just after a batch sends it at once, while one cut just before it leaves it a whole frame to wait,
        so each frame is cut on the first batch to arrive within ``ALIGN_WINDOW`` of a frame either side of
        its due time, or at the window's end if none does. Due times stay on a fixed period, so the
        frame rate does not drift with the feed. When nothing is waiting at the window's end the next
        batch is sent as soon as it comes (an idle hub adds no frame wait), and the period restarts there.
        """
        loop = asyncio.get_running_loop()
        window = self.frame_seconds * ALIGN_WINDOW
        due = loop.time() + self.frame_seconds
        while True:
            await asyncio.sleep(max(due - window - loop.time(), 0.0))
            arrival = loop.create_future()
            with self._lock:
                self._arrival = arrival
                waiting = bool(self._changed)
            try:
                if waiting:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                    # arrives as the future completes, and this loop would then outlive its event loop.
                    async with asyncio.timeout(max(due + window - loop.time(), 0.0)):
                        await arrival
                else:
                    await arrival
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    self._arrival = None
            now = loop.time()
            # Idle until now, or overloaded: start the period again from this frame.
            due = due + self.frame_seconds if now <= due + window else now + self.frame_seconds
            try:
                self.frame()
            except Exception:
                logger.exception("tick frame failed")

    async def _listen_redis(self) -> None:
        import redis.asyncio as aioredis

        channel = ticks_channel()

        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            self.offer_rows(decode_batch(message["data"]))
                        except (ValueError, KeyError, TypeError):
                            logger.warning("ignored a malformed tick batch on %s", channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("tick channel listener lost Redis; retrying in 1 s", exc_info=True)
                await asyncio.sleep(1)
            finally:
                await client.aclose()


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub() -> Hub:
    """Return this process's hub."""
    global _hub
    if _hub is None:
        with _hub_lock:
            if _hub is None:
                _hub = Hub(frame_seconds=settings.MARKETDATA_FRAME_MS / 1000)
    return _hub
