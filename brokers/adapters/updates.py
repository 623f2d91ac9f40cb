"""The order-update stream: adapters emit BrokerUpdates here; the OMS subscribes from its AppConfig.ready.

A callback registry instead of an import keeps the dependency pointing one way (orders -> brokers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from brokers.adapters.base import BrokerUpdate

logger = logging.getLogger(__name__)

Handler = Callable[[list[BrokerUpdate]], object]
_handlers: dict[str, Handler] = {}


def subscribe(name: str, handler: Handler) -> None:
    """Call ``handler(updates)`` with each list of updates an adapter emits, in order (consecutive
    updates of one order may be applied together); a second call with ``name`` replaces it."""
    _handlers[name] = handler


def emit(updates: list[BrokerUpdate]) -> None:
    """Deliver updates in order to every subscriber. When a subscriber fails on the list, it gets the
    updates again one at a time (subscribers are idempotent), so one bad update cannot hold back the
    others; a failure then is logged and skipped."""
    if not updates:
        return
    for name, handler in list(_handlers.items()):
        try:
            handler(updates)
            continue
        except Exception:
            if len(updates) == 1:
                logger.exception("broker update handler %s failed for %s", name, updates[0].tag)
                continue
            logger.warning("broker update handler %s failed on %d updates; one at a time", name, len(updates))
        for update in updates:
            try:
                handler([update])
            except Exception:
                logger.exception("broker update handler %s failed for %s", name, update.tag)
