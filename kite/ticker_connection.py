"""The parts of the Kite ticker feed (``kite.feed.KiteTickerFeed``) beside its websockets: the reconnect
backoff schedule (``Backoff``, every broker family's), the counts it keeps (``TickerStats``), one
connection's share of the tokens, the quote each decoded packet gives (``quote_from_tick``), and the
hand-off threads that call the quote and order-update callbacks off the event loop (a quote backlog
merged into each instrument's latest quote)."""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from websockets.asyncio.client import ClientConnection

from brokers.families.stream import Backoff as Backoff  # the shared schedule, re-exported for kite.feed
from kite import metrics
from kite.ticker import Tick
from marketdata.quotes import DepthLevel, Quote

logger = logging.getLogger(__name__)


@dataclass
class TickerStats:
    """Counts kept by the feed's event loop (read them, don't write them)."""

    connects: int = 0
    reconnects: int = 0
    frames: int = 0
    heartbeats: int = 0
    quotes: int = 0
    malformed_frames: int = 0
    skipped_packets: int = 0
    unknown_tokens: int = 0
    untraded: int = 0  # ticks with a last price of 0 (nothing traded yet), not turned into quotes
    order_updates: int = 0
    bad_messages: int = 0
    errors: int = 0
    conflated: int = 0


class _Handoff:
    """Calls ``callback`` with each item put, in order, on one thread of its own."""

    def __init__(self, name: str, callback: Callable, *, max_pending: int | None = None, merge=None) -> None:
        self._callback = callback
        self._max_pending = max_pending
        self._merge = merge
        self._pending: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._draining = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item) -> None:
        with self._cond:
            if self._stopping:
                return
            self._pending.append(item)
            if self._max_pending is not None and len(self._pending) > self._max_pending and self._merge is not None:
                merged = self._merge(list(self._pending))
                self._pending.clear()
                self._pending.append(merged)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending or (self._stopping and not self._draining):
                    return
                item = self._pending.popleft()
            try:
                self._callback(item)
            except Exception:
                logger.exception("kite ticker callback %s failed", self._callback)

    def stop(self, timeout: float, *, drain: bool) -> None:
        """Stop taking items; with ``drain`` hand over those already taken first, within ``timeout``."""
        with self._cond:
            self._stopping = True
            self._draining = drain
            self._cond.notify()
        self._thread.join(max(timeout, 0.0))
        with self._cond:
            left = len(self._pending)
            self._draining = False  # past the deadline: start no other call
            self._pending.clear()
        if left and drain:
            logger.error("kite ticker stopped with %d order updates not handed over", left)


class _Connection:
    """One websocket's share of the tokens."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.tokens: list[int] = []
        self.sent: set[int] = set()  # tokens subscribed on the open socket
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task | None = None
        self.opened = False  # the socket has been open before: its next opening is a reconnect


@dataclass(frozen=True)
class _Reconnected:
    index: int


def _latest_per_instrument(batches: list[list[Quote]]) -> list[Quote]:
    latest: dict[int, Quote] = {}
    total = 0
    for batch in batches:
        total += len(batch)
        for quote in batch:
            latest.pop(quote.instrument_id, None)  # re-insert: the merged batch keeps arrival order
            latest[quote.instrument_id] = quote
    dropped = total - len(latest)
    if dropped:
        metrics.TICKER_CONFLATED.inc(dropped)
    return list(latest.values())


def quote_from_tick(tick: Tick, *, instrument_id: int, received_at: datetime) -> Quote:
    """The ``Quote`` of a decoded packet: ``ts`` is the exchange time, or the receipt time without one
    (LTP and quote modes); empty depth levels are dropped; OHLC fields of 0 are unknown."""

    def price(value):
        return value if value else None

    bids = tuple(DepthLevel(e.price, e.quantity, e.orders) for e in tick.bids if e.quantity)
    asks = tuple(DepthLevel(e.price, e.quantity, e.orders) for e in tick.asks if e.quantity)
    return Quote(
        instrument_id=instrument_id,
        ltp=tick.last_price,
        ts=tick.exchange_timestamp or received_at,
        bid=bids[0].price if bids else None,
        ask=asks[0].price if asks else None,
        bid_qty=tick.total_buy_quantity or 0,
        ask_qty=tick.total_sell_quantity or 0,
        volume=tick.volume_traded or 0,
        oi=tick.oi or 0,
        open=price(tick.open),
        high=price(tick.high),
        low=price(tick.low),
        close=price(tick.close),
        bids=bids,
        asks=asks,
    )
