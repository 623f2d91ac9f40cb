"""Broker code -> adapter family. Each family registers its adapter class once (from its app's
``AppConfig.ready``); many broker codes may share a family. ``adapter_for(account)`` gives the
adapter bound to one account (and its session)."""

from __future__ import annotations

import functools
from typing import Any, cast

from brokers.adapters.base import BrokerAdapter, BrokerSessionExpired
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

    For a family with a daily login, the adapter holds the account's live session; without one it
    is ``SignedOut`` (``signed_in`` False), whose every call raises BrokerSessionExpired, not sent. A
    network broker's adapter gives the calling request's slot up while each call waits on the
    broker (infra/request_slots.py), so the process runs other requests meanwhile."""
    cls = family(account.broker)
    if cls.login is None:
        adapter = cls.for_account(account)
    else:
        from brokers.services.sessions import session_secrets

        secrets = session_secrets(account)
        # A SignedOut answers every call the adapter would, with BrokerSessionExpired.
        adapter = (
            cls.for_account(account, secrets) if secrets is not None else cast(BrokerAdapter, SignedOut(cls, account))
        )
    if cls.capabilities.places_in_transaction:  # in this database: no network wait to give up
        return adapter
    return cast(BrokerAdapter, _OverTheNetwork(adapter))  # it answers every call the adapter would


class SignedOut:
    """The adapter of an account whose family needs a daily login and that has no live session."""

    signed_in = False

    def __init__(self, family: type[BrokerAdapter], account: Any) -> None:
        self.family, self.account_id = family, account.pk
        self.capabilities, self.login, self.code = family.capabilities, family.login, family.code
        self.label = getattr(account, "label", "") or str(account.pk)

    def margin_rate(self, *, product: str, instrument_type: str, side: str):
        # Margin is the family's rule, not the session's: a signed-out account's blocks stay computable.
        return self.family.margin_rate(self, product=product, instrument_type=instrument_type, side=side)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def refuse(*args, **kwargs):
            raise BrokerSessionExpired(
                f"{self.label} is not signed in to its broker: sign in again, then retry. Nothing was sent.",
                extra={"account_id": self.account_id},
            )

        return refuse


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
