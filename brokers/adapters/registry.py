"""Broker code -> adapter family. Each family registers its adapter class once (from its app's
``AppConfig.ready``); many broker codes may share a family. ``adapter_for(account)`` gives the
adapter bound to one account (and its session)."""

from __future__ import annotations

import functools
from typing import Any

from brokers.adapters.base import BrokerAdapter
from core.errors import ApplicationError
from infra import request_slots


class UnknownBroker(ApplicationError):
    code = "unknown_broker"
    status = 422


_families: dict[str, type[BrokerAdapter]] = {}


def register(code: str, family: type[BrokerAdapter]) -> None:
    _families[code] = family


def unregister(code: str) -> None:
    _families.pop(code, None)


def family(code: str) -> type[BrokerAdapter]:
    """Return the adapter class of a broker code (its capabilities and login); raises UnknownBroker."""
    try:
        return _families[code]
    except KeyError:
        raise UnknownBroker(f"No adapter is registered for broker {code!r}.", extra={"broker": code}) from None


def adapter_for(account: Any) -> BrokerAdapter:
    """Return the adapter bound to ``account`` (a ``brokers.BrokerAccount``); raises UnknownBroker.

    A network broker's adapter gives the calling request's slot up while each call waits on the
    broker (infra/request_slots.py), so the process runs other requests meanwhile."""
    cls = family(account.broker)
    adapter = cls.for_account(account)
    if cls.capabilities.places_in_transaction:  # in this database: no network wait to give up
        return adapter
    return _OverTheNetwork(adapter)  # type: ignore[return-value]


class _OverTheNetwork:
    """A network adapter whose calls give the calling request's slot up while they wait on the broker."""

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
    return sorted(_families)
