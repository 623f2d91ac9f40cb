"""The Kite ticker as a ``marketdata.feeds.base.Feed``: quotes from ``wss://ws.kite.trade``.

- Connections: Kite takes up to 3,000 instruments on one websocket and 3 websockets per api key
  (https://kite.trade/docs/connect/v3/websocket). The feed spreads the instruments it is given over
  as many connections as they need, within ``tokens_per_connection`` and ``max_connections``;
  ``subscribe`` raises ``TickerCapacityExceeded`` beyond that, before changing anything.
- Each connection subscribes its tokens and sets their mode (``full`` by default) as it opens, again
  after every reconnect, and for tokens added while it is open.
- A lost or refused connection is tried again after an exponential backoff with jitter, capped
  (``Backoff``); the backoff starts over once a connection delivers again. A handshake refused with
  401 or 403 (a bad or expired access token) is not retried: the feed stops and ``is_alive()`` says so.
- Every binary frame's quotes go to ``on_quotes`` as one batch, on a delivery thread of the feed's own,
  so a slow callback never stalls the sockets (their pings and reads go on). The callback is never
  called concurrently. While it is behind by more than ``max_pending_batches`` frames, the waiting
  frames are merged into one batch of each instrument's latest quote (a Kite quote is a snapshot, so
  only superseded quotes are lost), counted in ``terminal_kite_ticker_conflated``.
- Order updates (text messages of type ``order``) go to ``on_order_update`` as ``kite.ticker.OrderUpdate``
  on another thread, in order and never merged; ``stop`` hands over those already received before it
  returns (within its timeout). Error and broker messages are logged.
- ``on_reconnect(index)`` is called on that same thread each time connection ``index`` opens again
  after it was open once (order updates sent while it was down are lost: reconcile then), after the
  order updates received before it.
- Malformed input (a broken frame, a packet of an unknown length, text of an unknown shape) is dropped,
  counted in ``stats`` and ``terminal_kite_ticker_malformed``, and never ends a connection.

Instrument tokens: by default from the instrument's exchange token and its exchange's segment code
(``default_instrument_token``); pass ``instrument_token`` (a callable of the instrument, or a mapping
from our instrument id to the token) when the broker's master gives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from kite import metrics
from kite.ticker import (
    BrokerMessage,
    ErrorMessage,
    MalformedFrame,
    MalformedMessage,
    Mode,
    OrderUpdate,
    Segment,
    UnknownMessage,
    decode_frame,
    instrument_token,
    mode_message,
    parse_text,
    subscribe_message,
)
from kite.ticker_connection import (
    Backoff,
    TickerStats,
    _Connection,
    _Handoff,
    _latest_per_instrument,
    _Reconnected,
    quote_from_tick,
)
from marketdata.feeds.base import Feed, QuoteCallback
from marketdata.models import Instrument
from marketdata.quotes import Quote

logger = logging.getLogger(__name__)

DEFAULT_URL = "wss://ws.kite.trade"
TOKENS_PER_CONNECTION = 3000
MAX_CONNECTIONS = 3
FATAL_STATUSES = frozenset({401, 403})

# Our exchanges' ticker segments (kite.ticker.Segment); an index is in INDICES whatever its exchange.
_EXCHANGE_SEGMENTS = {
    "NSE": Segment.NSE,
    "NFO": Segment.NFO,
    "CDS": Segment.CDS,
    "BSE": Segment.BSE,
    "BFO": Segment.BFO,
    "BCD": Segment.BCD,
    "MCX": Segment.MCX,
    "MCXSX": Segment.MCXSX,
}

OrderUpdateCallback = Callable[[OrderUpdate], None]
ReconnectCallback = Callable[[int], None]
TokenSource = Callable[[Instrument], int | None] | Mapping[int, int]


class TickerCapacityExceeded(ValueError):
    """More instruments than ``tokens_per_connection`` x ``max_connections``."""


def default_instrument_token(instrument: Instrument) -> int | None:
    """The ticker token of ``instrument`` from its exchange token, or None when it has none."""
    if instrument.instrument_type == "INDEX" or instrument.segment == "INDICES":
        segment: int | None = Segment.INDICES
    else:
        segment = _EXCHANGE_SEGMENTS.get(instrument.exchange)
    try:
        exchange_token = int(instrument.exchange_token)
    except (TypeError, ValueError):
        return None
    if segment is None:
        return None
    try:
        return instrument_token(exchange_token, segment)
    except ValueError:
        return None


class KiteTickerFeed(Feed):
    """Quotes and order updates from Kite's websocket ticker (see the module's docstring)."""

    name = "kite"

    def __init__(
        self,
        *,
        on_quotes: QuoteCallback,
        api_key: str,
        access_token: str,
        on_order_update: OrderUpdateCallback | None = None,
        on_reconnect: ReconnectCallback | None = None,
        mode: Mode | str = Mode.FULL,
        url: str = DEFAULT_URL,
        instrument_token: TokenSource = default_instrument_token,
        tokens_per_connection: int = TOKENS_PER_CONNECTION,
        max_connections: int = MAX_CONNECTIONS,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        max_pending_batches: int = 1000,
        open_timeout: float = 10.0,
        ping_interval: float | None = 5.0,
        ping_timeout: float | None = 10.0,
        read_timeout: float | None = None,
        proxy: str | bool | None = True,
    ) -> None:
        super().__init__(on_quotes=on_quotes)
        if tokens_per_connection < 1 or max_connections < 1:
            raise ValueError("a ticker needs at least one connection of at least one token")
        self.mode = Mode(mode)
        separator = "&" if "?" in url else "?"
        self._url = f"{url}{separator}{urlencode({'api_key': api_key, 'access_token': access_token})}"
        self.on_order_update = on_order_update
        self.on_reconnect = on_reconnect
        self._token_of = instrument_token
        self.tokens_per_connection = tokens_per_connection
        self.max_connections = max_connections
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # jitter, not secrecy
        self.max_pending_batches = max_pending_batches
        self._connect_options = {
            "open_timeout": open_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": 1.0,
            "max_size": 4 * 1024 * 1024,
            "proxy": proxy,
            "additional_headers": {"X-Kite-Version": "3"},
        }
        self.read_timeout = read_timeout
        self.stats = TickerStats()
        self.failure: str | None = None  # why the feed gave up (a refused access token)

        self._lock = threading.Lock()
        self._instrument_ids: dict[int, int] = {}  # ticker token -> Instrument.pk
        self._connections: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._quotes: _Handoff | None = None
        self._orders: _Handoff | None = None

    # The Feed interface.

    def subscribe(self, instruments: Sequence[Instrument]) -> None:
        """Add these instruments (a connection that is open subscribes them at once)."""
        wanted: dict[int, int] = {}
        missing: list[int] = []
        for instrument in instruments:
            token = self._token(instrument)
            if token is None:
                missing.append(instrument.pk)
                continue
            wanted[token] = instrument.pk
        if missing:
            logger.warning("no Kite ticker token for %d instruments (first ids: %s)", len(missing), missing[:10])
        with self._lock:
            new = [t for t in wanted if t not in self._instrument_ids]
            free = sum(self.tokens_per_connection - len(c.tokens) for c in self._connections)
            free += (self.max_connections - len(self._connections)) * self.tokens_per_connection
            if len(new) > free:
                raise TickerCapacityExceeded(
                    f"{len(self._instrument_ids) + len(new)} instruments exceed the ticker's "
                    f"{self.max_connections} connections of {self.tokens_per_connection}"
                )
            self._instrument_ids.update(wanted)
            for token in new:
                connection = next((c for c in self._connections if len(c.tokens) < self.tokens_per_connection), None)
                if connection is None:
                    connection = _Connection(len(self._connections))
                    self._connections.append(connection)
                connection.tokens.append(token)
        loop = self._loop
        if loop is not None and new:
            with contextlib.suppress(RuntimeError):  # the loop has ended (stopped, or the token was refused)
                loop.call_soon_threadsafe(self._apply_subscriptions)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the Kite ticker is already running")
        self.failure = None
        self._quotes = _Handoff(
            "kite-ticker-quotes",
            self.on_quotes,
            max_pending=self.max_pending_batches,
            merge=self._conflate,
        )
        wanted = self.on_order_update or self.on_reconnect
        self._orders = _Handoff("kite-ticker-orders", self._deliver_order) if wanted else None
        loop = asyncio.new_event_loop()
        self._closing = asyncio.Event()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,), name="feed-kite", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connections and stop the callbacks, waiting up to ``timeout`` seconds in all.

        Pending quote batches are dropped; order updates already received are handed over first. A
        callback that is still running when the time is up finishes on its own; none starts after."""
        deadline = time.monotonic() + timeout
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(closing.set)
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._quotes is not None:
            self._quotes.stop(deadline - time.monotonic(), drain=False)
        if self._orders is not None:
            self._orders.stop(deadline - time.monotonic(), drain=True)
        self._loop = None

    def is_alive(self) -> bool:
        return self.failure is None and self._thread is not None and self._thread.is_alive()

    # Mapping.

    def _token(self, instrument: Instrument) -> int | None:
        if isinstance(self._token_of, Mapping):
            return self._token_of.get(instrument.pk)
        return self._token_of(instrument)

    def connection_tokens(self) -> list[list[int]]:
        """The tokens of each connection, in order (for tests and diagnostics)."""
        with self._lock:
            return [list(c.tokens) for c in self._connections]

    # The event loop (its own thread).

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            logger.exception("the Kite ticker's event loop stopped on an error")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        assert self._closing is not None
        self._apply_subscriptions()
        await self._closing.wait()
        tasks = [c.task for c in self._connections if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in self._connections:
            connection.task = None

    def _apply_subscriptions(self) -> None:
        """Start a task for each connection without one; subscribe new tokens on the open sockets."""
        if self._closing is None or self._closing.is_set():
            return
        for connection in list(self._connections):
            if connection.task is None:
                connection.task = asyncio.get_running_loop().create_task(self._connection_loop(connection))
            elif connection.ws is not None:
                asyncio.get_running_loop().create_task(self._send_subscriptions(connection, connection.ws))

    async def _send_subscriptions(self, connection: _Connection, ws: ClientConnection) -> None:
        with self._lock:
            tokens = [t for t in connection.tokens if t not in connection.sent]
            connection.sent.update(tokens)
        if not tokens:
            return
        try:
            await ws.send(subscribe_message(tokens))
            await ws.send(mode_message(self.mode, tokens))
        except WebSocketException:
            pass  # the socket is going: the reconnect subscribes everything again

    async def _connection_loop(self, connection: _Connection) -> None:
        assert self._closing is not None
        attempt = 0
        while not self._closing.is_set():
            delivered = False
            try:
                async with connect(self._url, **self._connect_options) as ws:
                    self.stats.connects += 1
                    metrics.TICKER_CONNECTIONS.inc()
                    if connection.opened and self._orders is not None and self.on_reconnect is not None:
                        self._orders.put(_Reconnected(connection.index))
                    connection.opened = True
                    try:
                        with self._lock:
                            connection.sent = set()
                        connection.ws = ws
                        await self._send_subscriptions(connection, ws)
                        async for received in self._messages(ws):
                            if not delivered:
                                delivered, attempt = True, 0
                            self._handle(received)
                    finally:
                        connection.ws = None
                        metrics.TICKER_CONNECTIONS.dec()
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in FATAL_STATUSES:
                    self.failure = f"the ticker refused the access token (HTTP {status})"
                    logger.error("kite ticker: %s; not reconnecting", self.failure)
                    self._closing.set()
                    return
                logger.warning("kite ticker connection %d refused: HTTP %s", connection.index, status)
            except (OSError, TimeoutError, WebSocketException) as exc:
                logger.warning("kite ticker connection %d lost: %s", connection.index, exc)
            except Exception:  # a bug here must not end the connection for good
                logger.exception("kite ticker connection %d failed", connection.index)
            if self._closing.is_set():
                return
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            self.stats.reconnects += 1
            metrics.TICKER_RECONNECTS.inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=delay)

    async def _messages(self, ws: ClientConnection):
        while True:
            if self.read_timeout is None:
                message = await ws.recv()
            else:
                message = await asyncio.wait_for(ws.recv(), self.read_timeout)
            yield message, datetime.now(UTC)

    def _handle(self, received: tuple[str | bytes, datetime]) -> None:
        message, at = received
        if isinstance(message, bytes):
            self._on_binary(message, at)
        else:
            self._on_text(message)

    def _on_binary(self, data: bytes, received_at: datetime) -> None:
        try:
            frame = decode_frame(data)
        except MalformedFrame as exc:
            self.stats.malformed_frames += 1
            metrics.TICKER_MALFORMED.labels("frame").inc()
            logger.warning("kite ticker: dropped a malformed frame: %s", exc)
            return
        if frame.heartbeat:
            self.stats.heartbeats += 1
            return
        self.stats.frames += 1
        if frame.skipped:
            self.stats.skipped_packets += frame.skipped
            metrics.TICKER_MALFORMED.labels("packet").inc(frame.skipped)
        batch: list[Quote] = []
        newest: datetime | None = None
        for tick in frame.ticks:
            instrument_id = self._instrument_ids.get(tick.instrument_token)
            if instrument_id is None:
                self.stats.unknown_tokens += 1
                continue
            if not tick.last_price:
                self.stats.untraded += 1
                continue
            if tick.exchange_timestamp is not None and (newest is None or tick.exchange_timestamp > newest):
                newest = tick.exchange_timestamp
            batch.append(quote_from_tick(tick, instrument_id=instrument_id, received_at=received_at))
        if newest is not None:
            metrics.TICKER_LAG.observe(max((received_at - newest).total_seconds(), 0.0))
        if batch and self._quotes is not None:
            self.stats.quotes += len(batch)
            self._quotes.put(batch)

    def _on_text(self, text: str) -> None:
        try:
            message = parse_text(text)
        except MalformedMessage as exc:
            self.stats.bad_messages += 1
            metrics.TICKER_MALFORMED.labels("message").inc()
            logger.warning("kite ticker: dropped a malformed text message: %s", exc)
            return
        if isinstance(message, OrderUpdate):
            self.stats.order_updates += 1
            if self._orders is not None:
                self._orders.put(message)
        elif isinstance(message, ErrorMessage):
            self.stats.errors += 1
            logger.error("kite ticker error: %s", message.message)
        elif isinstance(message, BrokerMessage):
            logger.info("kite ticker message: %s", message.message)
        elif isinstance(message, UnknownMessage):
            logger.debug("kite ticker: ignored a message of type %s", message.type)

    # Delivery threads.

    def _conflate(self, batches: list[list[Quote]]) -> list[Quote]:
        merged = _latest_per_instrument(batches)
        self.stats.conflated += sum(len(b) for b in batches) - len(merged)
        return merged

    def _deliver_order(self, item: OrderUpdate | _Reconnected) -> None:
        if isinstance(item, _Reconnected):
            if self.on_reconnect is not None:
                self.on_reconnect(item.index)
        elif self.on_order_update is not None:
            self.on_order_update(item)
