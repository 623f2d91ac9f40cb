"""Tick listeners: code outside market data (the paper exchange's matching) registers here to be
called with each batch of new quotes, so that marketdata imports none of it.

Listeners run on a thread of their own (``ListenerWorker``), never on the feed's: the publisher
stores a batch and sends it to the websocket fan-out first, then hands it to the worker and goes on.
The hand-off is bounded and conflating: it holds at most one quote per instrument, and a newer quote
replaces one the listeners have not taken yet. So a slow listener (a database that stalls the
matching) sees the latest state when it catches up, never a backlog, and never holds up the feed.

What a replaced quote showed is not lost: the hand-off keeps, per instrument, the range its replaced
quotes reached (``PassedRange``: low and high of the last price, the lowest price a buyer could have
met, the highest a seller could have), so the paper exchange fills a resting limit that the market
crossed while it was behind. A listener gets ``(quotes, passed)``: the newest quote per instrument
and, for the instruments that had quotes replaced, their range; ``passed`` is empty while the
listeners keep up. A listener that raises is logged and does not stop the others or the feed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import close_old_connections, connection, connections

from marketdata import metrics
from marketdata.quotes import Quote

logger = logging.getLogger(__name__)
IDLE_SECONDS = 1.0  # with nothing handed over for this long, the worker closes its database connection


@dataclass(frozen=True, slots=True)
class PassedRange:
    """What one instrument's quotes reached while the listeners were behind: the quotes replaced in the
    hand-off by a newer one before any listener saw them (the newest quote is not part of it)."""

    since: datetime  # when the first of them reached the hand-off (UTC): orders resting since then saw them all
    ltp_low: Decimal
    ltp_high: Decimal
    buy_low: Decimal  # the lowest ask (the last price when a quote had no ask): the best a buyer could pay
    sell_high: Decimal  # the highest bid (or last price): the best a seller could get
    quotes: int  # how many quotes it covers


Listener = Callable[[list[Quote], Mapping[int, PassedRange]], None]
_listeners: dict[str, Listener] = {}


def register_tick_listener(name: str, listener: Listener) -> None:
    """Call ``listener(quotes, passed)`` for every batch the feed publishes (see the module docstring);
    a second call with ``name`` replaces it."""
    _listeners[name] = listener


def unregister_tick_listener(name: str) -> None:
    _listeners.pop(name, None)


def dispatch(quotes: list[Quote], passed: Mapping[int, PassedRange] | None = None) -> None:
    """Call every listener now, on this thread (the worker's; tests call it directly)."""
    passed = passed or {}
    for name, listener in list(_listeners.items()):
        try:
            listener(quotes, passed)
        except Exception:
            logger.exception("tick listener %s failed", name)


class _Slot:
    """One instrument's place in the hand-off: its newest quote and the range of the quotes it replaced."""

    __slots__ = ("buy_low", "ltp_high", "ltp_low", "quote", "replaced", "sell_high", "since")

    def __init__(self, quote: Quote, since: datetime) -> None:
        self.quote = quote
        self.since = since
        self.replaced = 0

    def replace(self, quote: Quote) -> None:
        old = self.quote
        buy = old.ask if old.ask is not None else old.ltp
        sell = old.bid if old.bid is not None else old.ltp
        if self.replaced:
            self.ltp_low = min(self.ltp_low, old.ltp)
            self.ltp_high = max(self.ltp_high, old.ltp)
            self.buy_low = min(self.buy_low, buy)
            self.sell_high = max(self.sell_high, sell)
        else:
            self.ltp_low = self.ltp_high = old.ltp
            self.buy_low, self.sell_high = buy, sell
        self.replaced += 1
        self.quote = quote

    def passed(self) -> PassedRange:
        return PassedRange(self.since, self.ltp_low, self.ltp_high, self.buy_low, self.sell_high, self.replaced)


class ListenerWorker:
    """Runs the tick listeners on its own thread behind a conflating hand-off (one per feed process).

    ``offer`` never waits for the listeners: it folds a batch into the hand-off under a lock that the
    worker holds only to swap the hand-off for an empty one.
    """

    def __init__(self, *, run: Callable[[list[Quote], Mapping[int, PassedRange]], None] = dispatch) -> None:
        self._run_listeners = run
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: dict[int, _Slot] = {}
        self._oldest: float | None = None  # monotonic time the oldest quote waiting in the hand-off arrived
        self._working_since: float | None = None  # that time for the batch the listeners are running
        self._stopping = False
        self._thread: threading.Thread | None = None

    def offer(self, batch: list[Quote]) -> None:
        """Hand ``batch`` to the listeners; return at once, whatever they are doing."""
        now = datetime.now(UTC)
        replaced = 0
        with self._lock:
            pending = self._pending
            for quote in batch:
                slot = pending.get(quote.instrument_id)
                if slot is None:
                    pending[quote.instrument_id] = _Slot(quote, now)
                else:
                    slot.replace(quote)
                    replaced += 1
            if self._oldest is None:
                self._oldest = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="tick-listeners", daemon=True)
                self._thread.start()
            self._changed.notify_all()
        if replaced:
            metrics.LISTENER_CONFLATED.inc(replaced)

    def lag(self) -> float:
        """Return how long the oldest quote not yet through the listeners has waited (0 when none)."""
        with self._lock:
            since = self._working_since if self._working_since is not None else self._oldest
        return 0.0 if since is None else time.monotonic() - since

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every quote offered so far has been through the listeners; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and self._working_since is None, timeout)

    def stop(self, timeout: float = 5.0) -> bool:
        """Run the listeners on what is waiting, then end the thread; False if it was still busy at ``timeout``."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _work(self) -> None:
        try:
            while True:
                with self._changed:
                    if not self._changed.wait_for(lambda: self._pending or self._stopping, IDLE_SECONDS):
                        idle = True
                    elif not self._pending:
                        return  # stopping, nothing left
                    else:
                        idle = False
                        pending, self._pending = self._pending, {}
                        self._working_since, self._oldest = self._oldest, None
                if idle:  # a feed that pauses (a closed session, a test) does not hold a database connection
                    connections.close_all()
                    with self._changed:
                        self._changed.wait_for(lambda: self._pending or self._stopping)
                    continue
                self._dispatch(pending)
        finally:
            connections.close_all()

    def _dispatch(self, pending: dict[int, _Slot]) -> None:
        quotes = [slot.quote for slot in pending.values()]
        passed = {instrument_id: slot.passed() for instrument_id, slot in pending.items() if slot.replaced}
        try:
            if not connection.in_atomic_block:  # a long-lived thread: drop a connection past its age
                close_old_connections()
            self._run_listeners(quotes, passed)
        except Exception:  # dispatch logs each listener's own errors; this is the connection check
            logger.exception("tick listeners failed")
        finally:
            with self._changed:
                metrics.LISTENER_LAG.observe(time.monotonic() - self._working_since)
                self._working_since = None
                self._changed.notify_all()
