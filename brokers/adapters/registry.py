"""Broker code -> adapter. Each broker family registers once; many broker codes may share a family."""

from __future__ import annotations

from collections.abc import Callable

from brokers.adapters.base import BrokerAdapter
from terminal.errors import ApplicationError


class UnknownBroker(ApplicationError):
    code = "unknown_broker"
    status = 422


_factories: dict[str, Callable[[], BrokerAdapter]] = {}
_instances: dict[str, BrokerAdapter] = {}


def register(code: str, factory: Callable[[], BrokerAdapter]) -> None:
    _factories[code] = factory
    _instances.pop(code, None)


def get_adapter(code: str) -> BrokerAdapter:
    """Return the (process-wide) adapter for a broker code; raises UnknownBroker."""
    adapter = _instances.get(code)
    if adapter is None:
        try:
            factory = _factories[code]
        except KeyError:
            raise UnknownBroker(f"No adapter is registered for broker {code!r}.", extra={"broker": code}) from None
        adapter = _instances[code] = factory()
    return adapter


def registered_codes() -> list[str]:
    return sorted(_factories)
