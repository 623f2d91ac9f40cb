"""How each broker family names our instruments, both ways: the broker's token to our
``Instrument.pk`` (a tick decoder, an order update) and our instrument to the broker's token, trading
symbol and exchange (sending an order). Read from the ``BrokerInstrument`` rows a broker's
symbol-master import writes, kept whole per process and per broker, and reloaded when an import
publishes a new version in the shared cache (checked at most once a second), as ``rms.limits`` does.

Re-exported by ``brokers.selectors``; broker adapters and feeds import it from here, as they may not
reach ``accounts`` (the ``broker-adapters`` import contract).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache

from brokers.models import BrokerInstrument

logger = logging.getLogger(__name__)


INSTRUMENT_MAP_VERSION_KEY = "brokers:instrument-map:version"
INSTRUMENT_MAP_RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class BrokerSymbol:
    """How a broker names one of our instruments: its token, trading symbol and exchange."""

    token: str
    tradingsymbol: str
    exchange: str


@dataclass(frozen=True, slots=True)
class InstrumentMap:
    """One broker family's mapping, both ways: ``by_token`` (the broker's token, as text, to our
    ``Instrument.pk``) for decoding ticks and order updates, ``by_instrument`` (our pk to the broker's
    names) for sending orders. Built whole and never changed: hold it for as long as you like."""

    broker: str
    by_token: dict[str, int]
    by_instrument: dict[int, BrokerSymbol]


_maps: dict[str, InstrumentMap] = {}
_map_lock = threading.Lock()
_map_state = {"version": None, "checked_at": 0.0}


def instrument_map(broker: str) -> InstrumentMap:
    """Return ``broker``'s instrument mapping, loaded once per process and kept until an import
    publishes a new version (checked in the shared cache at most once a second). A call is a clock
    read and a dict lookup: cheap enough for the order path and a tick decoder."""
    now = time.monotonic()
    if now - _map_state["checked_at"] > INSTRUMENT_MAP_RECHECK_SECONDS:
        _sync_instrument_maps(now)
    mapping = _maps.get(broker)
    if mapping is None:
        mapping = _load_instrument_map(broker)
        with _map_lock:
            _maps[broker] = mapping
    return mapping


def instrument_id_for_token(*, broker: str, token: str | int) -> int | None:
    """Our ``Instrument.pk`` for the broker's token, or None when the broker's master does not list it."""
    return instrument_map(broker).by_token.get(str(token))


def broker_symbol_for(*, broker: str, instrument_id: int) -> BrokerSymbol | None:
    """The broker's token, trading symbol and exchange for our instrument, or None when it has none."""
    return instrument_map(broker).by_instrument.get(instrument_id)


def broker_symbol_required(*, broker: str, instrument_id: int, what: str, master: str) -> BrokerSymbol:
    """``broker_symbol_for``, for a request about to be sent: raises BrokerRejected
    ``broker_instrument_not_mapped`` (nothing sent), saying "{what} is not in {master}", when the
    broker's mapping does not have the instrument."""
    symbol = broker_symbol_for(broker=broker, instrument_id=instrument_id)
    if symbol is None:
        from brokers.adapters.base import BrokerRejected

        raise BrokerRejected(
            f"{what} is not in {master}: nothing was sent.",
            code="broker_instrument_not_mapped",
            extra={"instrument_id": instrument_id},
        )
    return symbol


def broker_instrument_count(*, broker: str) -> int:
    """How many instruments the broker's mapping holds (a new import's plausibility reference)."""
    return BrokerInstrument.objects.filter(broker=broker).count()


def instrument_map_invalidate() -> None:
    """Drop this process's mappings and tell the others (after an import commits)."""
    with _map_lock:
        _maps.clear()
    try:
        try:
            cache.incr(INSTRUMENT_MAP_VERSION_KEY)
        except ValueError:
            cache.set(INSTRUMENT_MAP_VERSION_KEY, 1, timeout=None)
    except Exception:  # the import has committed; the cache being down must not fail it
        logger.warning("could not publish the instrument map version", exc_info=True)


def _sync_instrument_maps(now: float) -> None:
    try:
        version = cache.get(INSTRUMENT_MAP_VERSION_KEY, 0)
    except Exception:
        logger.warning("could not read the instrument map version; reloading the mappings", exc_info=True)
        version = object()  # unknown: treat as changed
    with _map_lock:
        if version != _map_state["version"]:
            _maps.clear()
            _map_state["version"] = version
        _map_state["checked_at"] = now


def _load_instrument_map(broker: str) -> InstrumentMap:
    by_token: dict[str, int] = {}
    by_instrument: dict[int, BrokerSymbol] = {}
    rows = BrokerInstrument.objects.filter(broker=broker).values_list(
        "token", "tradingsymbol", "exchange", "instrument_id"
    )
    for token, tradingsymbol, exchange, instrument_id in rows.iterator(chunk_size=5000):
        by_token[token] = instrument_id
        by_instrument[instrument_id] = BrokerSymbol(token, tradingsymbol, exchange)
    return InstrumentMap(broker=broker, by_token=by_token, by_instrument=by_instrument)
