"""Broker code -> adapter. Each broker family registers once; many broker codes may share a family."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from brokers.adapters.base import BrokerAdapter
from core.errors import ApplicationError
from infra import request_slots


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
        adapter = factory()
        if not adapter.capabilities.places_in_transaction:  # it calls out over the network
            adapter = _OverTheNetwork(adapter)  # type: ignore[assignment]
        _instances[code] = adapter
    return adapter


class _OverTheNetwork:
    """A network adapter whose calls give the calling request's slot up while they wait on the broker
    (infra/request_slots.py): the process runs other requests meanwhile."""

    def __init__(self, adapter: BrokerAdapter) -> None:
        self._adapter = adapter

    @property
    def wrapped(self) -> BrokerAdapter:
        return self._adapter

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._adapter, name)
        if name.startswith("_") or not callable(value):
            return value

        @functools.wraps(value)
        def call(*args, **kwargs):
            with request_slots.released():
                return value(*args, **kwargs)

        return call


def registered_codes() -> list[str]:
    return sorted(_factories)
