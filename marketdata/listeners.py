"""Tick listeners: code outside market data (the paper exchange's matching, RMS mark-to-market)
registers here to be called with each batch of new quotes, so that marketdata imports neither.

Listeners run in the feed's process after the batch is stored; they must be quick, and one that
raises is logged and does not stop the others or the feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from marketdata.quotes import Quote

logger = logging.getLogger(__name__)

Listener = Callable[[list[Quote]], None]
_listeners: dict[str, Listener] = {}


def register_tick_listener(name: str, listener: Listener) -> None:
    """Call ``listener(quotes)`` for every batch the feed publishes; a second call with ``name`` replaces it."""
    _listeners[name] = listener


def unregister_tick_listener(name: str) -> None:
    _listeners.pop(name, None)


def dispatch(quotes: list[Quote]) -> None:
    for name, listener in list(_listeners.items()):
        try:
            listener(quotes)
        except Exception:
            logger.exception("tick listener %s failed", name)
