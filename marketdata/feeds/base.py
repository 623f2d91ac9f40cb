"""The interface every source of quotes implements: the simulator, replay, and broker tickers.

A feed turns its source's messages into ``marketdata.quotes.Quote`` objects and hands each batch to
the ``on_quotes`` callback it was built with (``Publisher.publish`` in production: store, candles,
listeners, fan-out). See docs/marketdata.md, "Adding a feed".
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Sequence

from marketdata.models import Instrument
from marketdata.quotes import Quote

logger = logging.getLogger(__name__)

QuoteCallback = Callable[[list[Quote]], None]


class Feed(abc.ABC):
    """A source of quotes.

    Life cycle: ``subscribe(instruments)`` (any time), ``start()`` (returns at once; quotes arrive on
    the feed's own thread or connection), ``stop()`` (returns once no more callbacks will be made).
    The callback gets non-empty lists of quotes with UTC-aware ``ts`` and Decimal prices; it is never
    called concurrently by one feed.
    """

    name = "feed"

    def __init__(self, *, on_quotes: QuoteCallback) -> None:
        self.on_quotes = on_quotes

    @abc.abstractmethod
    def subscribe(self, instruments: Sequence[Instrument]) -> None:
        """Ask the source for these instruments' quotes (a broker ticker sends their tokens upstream)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin delivering quotes; raise if the source cannot be reached at all."""

    @abc.abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering and release the connection; wait up to ``timeout`` seconds."""

    def is_alive(self) -> bool:
        """Return whether the feed is still delivering (a finished replay or a dropped socket is not)."""
        return True


class ThreadedFeed(Feed):
    """A feed whose loop runs on one background thread: implement ``run(stop)``."""

    def __init__(self, *, on_quotes: QuoteCallback) -> None:
        super().__init__(on_quotes=on_quotes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._guarded_run, name=f"feed-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _guarded_run(self) -> None:
        try:
            self.run(self._stop)
        except Exception:
            logger.exception("feed %s stopped on an error", self.name)

    @abc.abstractmethod
    def run(self, stop: threading.Event) -> None:
        """Produce quotes until ``stop`` is set (or the source ends)."""
