"""The order-update stream: adapters emit BrokerUpdates here; the OMS subscribes from its AppConfig.ready.

A callback registry instead of an import keeps the dependency pointing one way (orders -> brokers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from brokers.adapters.base import BrokerUpdate

logger = logging.getLogger(__name__)

Handler = Callable[[BrokerUpdate], None]
_handlers: dict[str, Handler] = {}


def subscribe(name: str, handler: Handler) -> None:
    """Call ``handler(update)`` for every update any adapter emits; a second call with ``name`` replaces it."""
    _handlers[name] = handler


def emit(updates: list[BrokerUpdate]) -> None:
    """Deliver updates in order to every subscriber; a failing subscriber is logged and skipped."""
    for update in updates:
        for name, handler in list(_handlers.items()):
            try:
                handler(update)
            except Exception:
                logger.exception("broker update handler %s failed for %s", name, update.client_order_id)
