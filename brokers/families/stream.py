"""A broker family's websocket (market data, order updates, or both) as a ``marketdata.feeds.base.Feed``.

The family writes a ``StreamDialect``: the URL and headers, the messages that open a session and
subscribe tokens, its heartbeat, and ``decode(message)`` turning one websocket message into
``StreamTick``s (by the broker's token), order-update messages (plain mappings the family's adapter
turns into ``BrokerUpdate``s) and replies to send back (a pong, a Socket.IO answer). ``StreamFeed``
does the rest the same way for every family:

- one connection on its own thread and event loop; subscriptions sent on open, again after every
  reconnect, and at once for instruments added while open;
- a lost or refused connection is retried after an exponential backoff with jitter (``Backoff``), which
  starts over once a connection delivers; a handshake refused with 401 or 403 (a bad or expired
  session) is not retried: the feed stops and ``is_alive()`` says so;
- a message the dialect cannot read (``MalformedFrame`` or any error of its decoder) is counted in
  ``stats.malformed`` and ``terminal_broker_stream_malformed_total{family}`` and skipped: it never ends
  the connection; a tick for a token the family's mapping does not hold is counted and skipped;
- ticks become ``Quote``s of our instruments (``brokers.instrument_map``) delivered as one batch per
  message to ``on_quotes``; order updates go to ``on_orders``; both on the feed's thread, never
  concurrently; ``on_reconnect()`` is called when a connection opens again after one was lost
  (updates sent while it was down are lost: the order system reconciles).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from prometheus_client import Counter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from brokers.families.wire import SECRET_QUERY
from brokers.instrument_map import instrument_map
from marketdata.feeds.base import Feed, QuoteCallback
from marketdata.models import Instrument
from marketdata.quotes import DepthLevel, Quote

logger = logging.getLogger(__name__)

FATAL_STATUSES = frozenset({401, 403})

stream_malformed = Counter(
    "terminal_broker_stream_malformed",
    "Websocket messages from a broker that could not be decoded and were skipped, by broker family.",
    ["family"],
)
stream_reconnects = Counter(
    "terminal_broker_stream_reconnects", "Broker websocket connections opened again after a loss.", ["family"]
)


# Handshake headers that carry a session or a key: the websockets client logs each header at DEBUG.
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-feed-token", "x-client-code", "access-token", "x-access-token", "cookie"}
)


class RedactHandshake(logging.Filter):
    """Redacts secret headers ("> authorization: ...") and token-bearing query parameters (the
    handshake's "> GET /?token=..." line) from the websockets client's DEBUG log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(record.msg, str)
            and record.msg.endswith("%s: %s")
            and isinstance(args, tuple)
            and len(args) == 2
            and str(args[0]).lower() in SECRET_HEADERS
        ):
            record.args = (args[0], "[redacted]")
            return True
        message = record.getMessage()
        redacted = SECRET_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


for _name in ("websockets.client", "websockets"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, RedactHandshake) for f in _logger.filters):
        _logger.addFilter(RedactHandshake())


class MalformedFrame(ValueError):
    """A message a dialect cannot read (truncated, corrupt, of an unknown shape)."""


@dataclass(frozen=True, slots=True)
class StreamTick:
    """One instrument's market as a broker's stream gave it; None (or 0) for what the message did not carry."""

    token: str
    ltp: Decimal | None = None
    ts: datetime | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty: int = 0
    ask_qty: int = 0
    volume: int = 0
    oi: int = 0
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()


@dataclass
class Decoded:
    """What one websocket message held."""

    ticks: list[StreamTick] = field(default_factory=list)
    orders: list[Mapping[str, Any]] = field(default_factory=list)
    replies: list[str | bytes] = field(default_factory=list)
    skipped: int = 0  # packets inside the message the dialect could not read (counted as malformed)


class StreamDialect(Protocol):
    """One family's websocket protocol (see the module docstring). A dialect may keep state (a
    family whose updates carry only the changed fields merges them into the last full tick)."""

    family: str
    heartbeat_interval: float | None

    def url(self) -> str: ...

    def headers(self) -> Mapping[str, str]: ...

    def opening(self) -> Sequence[str | bytes]:
        """Messages sent as the connection opens (a session's credentials), before any subscription."""
        ...

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        """Messages subscribing these broker tokens (all of them after a reconnect)."""
        ...

    def heartbeat(self) -> str | bytes | None:
        """The message sent every ``heartbeat_interval`` seconds (None: websocket pings suffice)."""
        ...

    def decode(self, message: str | bytes) -> Decoded:
        """One message's ticks, order updates and replies; raises ``MalformedFrame`` for one it cannot read."""
        ...


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (from 0): ``initial * factor**n`` capped at ``cap``, less a
    random share of up to ``jitter`` so that connections lost together spread out."""

    initial: float = 1.0
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = self.cap if attempt >= 64 else min(self.cap, self.initial * self.factor**attempt)
        return ceiling * (1.0 - self.jitter * rng.random())


@dataclass
class StreamStats:
    """Counts kept by the feed's thread (read them, don't write them)."""

    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    quotes: int = 0
    order_updates: int = 0
    malformed: int = 0
    unknown_tokens: int = 0
    callback_errors: int = 0


def quote_of(tick: StreamTick, instrument_id: int, received_at: datetime) -> Quote | None:
    """The tick as our instrument's quote; None for one without a last price (nothing traded yet)."""
    if tick.ltp is None or tick.ltp <= 0:
        return None
    return Quote(
        instrument_id=instrument_id,
        ltp=tick.ltp,
        ts=tick.ts or received_at,
        bid=tick.bid,
        ask=tick.ask,
        bid_qty=tick.bid_qty,
        ask_qty=tick.ask_qty,
        volume=tick.volume,
        oi=tick.oi,
        open=tick.open,
        high=tick.high,
        low=tick.low,
        close=tick.close,
        bids=tick.bids,
        asks=tick.asks,
    )


class StreamFeed(Feed):
    """A family's websocket as a feed of quotes (and order updates); see the module docstring."""

    def __init__(
        self,
        dialect: StreamDialect,
        *,
        on_quotes: QuoteCallback | None = None,
        on_orders: Callable[[list[Mapping[str, Any]]], None] | None = None,
        on_reconnect: Callable[[], None] | None = None,
        backoff: Backoff | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(on_quotes=on_quotes or (lambda quotes: None))
        self.dialect = dialect
        self.name = f"{dialect.family}-stream"
        self.on_orders, self.on_reconnect = on_orders, on_reconnect
        self.backoff = backoff or Backoff()
        self.stats = StreamStats()
        self._rng = random.Random(seed)
        self._tokens: dict[str, int] = {}  # broker token -> our instrument id
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ws: ClientConnection | None = None
        self._fatal: str | None = None
        self._opened_once = False

    # --- the Feed interface -----------------------------------------------------------------------
    def subscribe(self, instruments: Sequence[Instrument]) -> None:
        """Subscribe our instruments by the family's tokens; one the mapping lacks is skipped (logged)."""
        mapping = instrument_map(self.dialect.family).by_instrument
        added = []
        with self._lock:
            for instrument in instruments:
                symbol = mapping.get(instrument.pk)
                if symbol is None:
                    logger.warning("%s: %s is not in the broker's mapping", self.name, instrument)
                    continue
                if symbol.token not in self._tokens:
                    self._tokens[symbol.token] = instrument.pk
                    added.append(symbol.token)
        self.subscribe_tokens_sent(added)

    def subscribe_tokens(self, tokens: Mapping[str, int]) -> None:
        """Subscribe broker tokens with the instrument ids they stand for (tests, tools)."""
        with self._lock:
            added = [token for token in tokens if token not in self._tokens]
            self._tokens.update(tokens)
        self.subscribe_tokens_sent(added)

    def subscribe_tokens_sent(self, added: list[str]) -> None:
        loop, ws = self._loop, self._ws
        if added and loop is not None and ws is not None:
            asyncio.run_coroutine_threadsafe(self._send_all(ws, self.dialect.subscribe(added)), loop)

    def start(self) -> None:
        self._fatal = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"feed-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._fatal is None

    @property
    def stopped_because(self) -> str | None:
        """Why the feed gave up (a refused session), or None."""
        return self._fatal

    # --- the connection ---------------------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except Exception:
            logger.exception("%s stopped on an error", self.name)
        finally:
            loop.close()
            self._loop = None

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        ready.set()
        attempt = 0
        while not self._stopping.is_set():
            delivered = await self._connection()
            if self._fatal is not None or self._stopping.is_set():
                return
            attempt = 0 if delivered else attempt + 1
            delay = self.backoff.delay(attempt, self._rng)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _connection(self) -> bool:
        """One connection's life; returns whether it delivered anything."""
        delivered = False
        assert self._stopping is not None
        try:
            async with connect(
                self.dialect.url(), additional_headers=dict(self.dialect.headers()), open_timeout=5, max_size=2**22
            ) as ws:
                self._ws = ws
                self.stats.connects += 1
                if self._opened_once:
                    self.stats.reconnects += 1
                    stream_reconnects.labels(self.dialect.family).inc()
                    self._call(self.on_reconnect)
                self._opened_once = True
                await self._send_all(ws, self.dialect.opening())
                with self._lock:
                    tokens = list(self._tokens)
                if tokens:
                    await self._send_all(ws, self.dialect.subscribe(tokens))
                beat = asyncio.create_task(self._heartbeats(ws))
                stop = asyncio.create_task(self._stopping.wait())
                try:
                    while True:
                        receive = asyncio.create_task(ws.recv())
                        done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                        if stop in done:
                            receive.cancel()
                            return delivered
                        message = receive.result()
                        delivered = True
                        await self._handle(ws, message)
                finally:
                    beat.cancel()
                    stop.cancel()
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in FATAL_STATUSES:
                self._fatal = f"the broker refused the session (HTTP {status})"
                logger.error("%s: %s; not retrying", self.name, self._fatal)
            else:
                logger.warning("%s: handshake refused with HTTP %s", self.name, status)
        except (OSError, WebSocketException, TimeoutError) as exc:
            logger.warning("%s: connection lost (%s)", self.name, type(exc).__name__)
        finally:
            self._ws = None
        return delivered

    async def _heartbeats(self, ws: ClientConnection) -> None:
        interval = self.dialect.heartbeat_interval
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            beat = self.dialect.heartbeat()
            if beat is not None:
                await ws.send(beat)

    @staticmethod
    async def _send_all(ws: ClientConnection, messages: Sequence[str | bytes]) -> None:
        for message in messages:
            await ws.send(message)

    async def _handle(self, ws: ClientConnection, message: str | bytes) -> None:
        self.stats.messages += 1
        try:
            decoded = self.dialect.decode(message)
        except Exception as exc:  # a decoder's failure of any kind is a bad message, never a dead feed
            self.stats.malformed += 1
            stream_malformed.labels(self.dialect.family).inc()
            if not isinstance(exc, MalformedFrame):
                logger.warning("%s: a message could not be decoded (%s)", self.name, type(exc).__name__)
            return
        if decoded.skipped:
            self.stats.malformed += decoded.skipped
            stream_malformed.labels(self.dialect.family).inc(decoded.skipped)
        if decoded.replies:
            await self._send_all(ws, decoded.replies)
        if decoded.ticks:
            received_at = datetime.now(UTC)
            quotes = []
            with self._lock:
                for tick in decoded.ticks:
                    instrument_id = self._tokens.get(tick.token)
                    if instrument_id is None:
                        self.stats.unknown_tokens += 1
                        continue
                    quote = quote_of(tick, instrument_id, received_at)
                    if quote is not None:
                        quotes.append(quote)
            if quotes:
                self.stats.quotes += len(quotes)
                self._call(self.on_quotes, quotes)
        if decoded.orders and self.on_orders is not None:
            self.stats.order_updates += len(decoded.orders)
            self._call(self.on_orders, decoded.orders)

    def _call(self, callback: Callable[..., object] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("%s: a callback failed", self.name)
