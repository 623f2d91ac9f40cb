"""The per-broker instrument mapping: written by a broker's symbol-master import, read both ways
through a per-process copy that follows a version number in the shared cache."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction

from brokers import instrument_map as selectors
from brokers.models import BrokerInstrument
from brokers.selectors import BrokerSymbol, broker_symbol_for, instrument_id_for_token, instrument_map
from brokers.services.instruments import (
    BrokerListing,
    broker_instrument_upsert_many,
    broker_instruments_keep,
    broker_instruments_retire_unlisted,
)
from marketdata.models import Instrument

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 7, 2, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_maps():
    selectors._maps.clear()
    selectors._map_state.update(version=None, checked_at=0.0)
    cache.delete(selectors.INSTRUMENT_MAP_VERSION_KEY)
    yield
    selectors._maps.clear()


def _instrument(symbol: str, token: str, *, exchange: str = "NSE", expiry: date | None = None) -> Instrument:
    return Instrument.objects.create(
        exchange=exchange,
        segment=exchange,
        tradingsymbol=symbol,
        exchange_token=token,
        instrument_type="EQ" if expiry is None else "FUT",
        expiry=expiry,
    )


def _listing(instrument: Instrument, token: str) -> BrokerListing:
    return BrokerListing(instrument.exchange, instrument.tradingsymbol, token, instrument.tradingsymbol, "NSE")


def test_the_map_answers_both_ways_and_is_loaded_once():
    infy, tcs = _instrument("INFY", "1594"), _instrument("TCS", "11536")
    broker_instrument_upsert_many(
        broker="kite", listings=[_listing(infy, "408065"), _listing(tcs, "2953217")], listed_at=T0
    )
    assert instrument_id_for_token(broker="kite", token=408065) == infy.pk
    assert instrument_id_for_token(broker="kite", token="2953217") == tcs.pk
    assert broker_symbol_for(broker="kite", instrument_id=infy.pk) == BrokerSymbol("408065", "INFY", "NSE")
    assert instrument_id_for_token(broker="kite", token="1") is None
    assert instrument_id_for_token(broker="upstox", token="408065") is None
    first = instrument_map("kite")
    assert instrument_map("kite") is first, "the same object until the version changes"


def test_a_new_version_reaches_every_process_within_the_recheck(monkeypatch):
    infy = _instrument("INFY", "1594")
    broker_instrument_upsert_many(broker="kite", listings=[_listing(infy, "408065")], listed_at=T0)
    assert instrument_id_for_token(broker="kite", token="408065") == infy.pk
    # Another process imports a new file: the rows change and the version moves on.
    BrokerInstrument.objects.filter(broker="kite").update(token="999")
    cache.set(selectors.INSTRUMENT_MAP_VERSION_KEY, 41, timeout=None)
    assert instrument_id_for_token(broker="kite", token="408065") == infy.pk, "not rechecked within the second"
    clock = [selectors.time.monotonic() + 2]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: clock[0])
    assert instrument_id_for_token(broker="kite", token="408065") is None
    assert instrument_id_for_token(broker="kite", token="999") == infy.pk


def test_invalidating_drops_this_processs_copy_at_once():
    infy = _instrument("INFY", "1594")
    assert instrument_id_for_token(broker="kite", token="408065") is None
    broker_instrument_upsert_many(broker="kite", listings=[_listing(infy, "408065")], listed_at=T0)
    selectors.instrument_map_invalidate()
    assert instrument_id_for_token(broker="kite", token="408065") == infy.pk
    assert cache.get(selectors.INSTRUMENT_MAP_VERSION_KEY) == 1


def test_the_cache_being_down_reloads_rather_than_failing(monkeypatch):
    infy = _instrument("INFY", "1594")
    broker_instrument_upsert_many(broker="kite", listings=[_listing(infy, "408065")], listed_at=T0)

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(selectors.cache, "get", down)
    monkeypatch.setattr(selectors.cache, "incr", down)
    selectors.instrument_map_invalidate()
    assert instrument_id_for_token(broker="kite", token="408065") == infy.pk


def test_a_token_and_an_instrument_are_mapped_once_per_broker():
    infy, tcs = _instrument("INFY", "1594"), _instrument("TCS", "11536")
    BrokerInstrument.objects.create(
        broker="kite", instrument=infy, token="1", tradingsymbol="INFY", exchange="NSE", listed_at=T0
    )
    BrokerInstrument.objects.create(
        broker="upstox", instrument=infy, token="1", tradingsymbol="INFY", exchange="NSE_EQ", listed_at=T0
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BrokerInstrument.objects.create(
            broker="kite", instrument=tcs, token="1", tradingsymbol="TCS", exchange="NSE", listed_at=T0
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        BrokerInstrument.objects.create(
            broker="kite", instrument=infy, token="2", tradingsymbol="INFY", exchange="NSE", listed_at=T0
        )


def test_a_recycled_token_moves_to_its_new_contract_and_ids_stay():
    old = _instrument("NIFTY26NOVFUT", "35001", exchange="NFO", expiry=date(2026, 11, 24))
    new = _instrument("NIFTY27JANFUT", "35002", exchange="NFO", expiry=date(2027, 1, 26))
    broker_instrument_upsert_many(broker="kite", listings=[_listing(old, "13000")], listed_at=T0)
    row = BrokerInstrument.objects.get(instrument=old)
    later = T0 + timedelta(days=1)
    broker_instrument_upsert_many(broker="kite", listings=[_listing(new, "13000")], listed_at=later)
    assert BrokerInstrument.objects.get(broker="kite", token="13000").instrument_id == new.pk
    assert not BrokerInstrument.objects.filter(pk=row.pk).exists()
    # Updating in place keeps the row.
    mapped = BrokerInstrument.objects.get(instrument=new)
    broker_instrument_upsert_many(broker="kite", listings=[_listing(new, "13001")], listed_at=later)
    assert BrokerInstrument.objects.get(instrument=new).pk == mapped.pk


def test_unlisted_instruments_turn_inactive_and_leave_the_map_and_expired_ones_turn_inactive():
    infy, tcs = _instrument("INFY", "1594"), _instrument("TCS", "11536")
    fut = _instrument("INFY26NOVFUT", "40001", exchange="NFO", expiry=date(2026, 11, 24))
    garbled = _instrument("SBIN", "3045")
    listings = [_listing(infy, "1"), _listing(tcs, "2"), _listing(fut, "3"), _listing(garbled, "4")]
    broker_instrument_upsert_many(broker="kite", listings=listings, listed_at=T0)
    later = T0 + timedelta(days=1)
    broker_instrument_upsert_many(broker="kite", listings=[_listing(infy, "1"), _listing(fut, "3")], listed_at=later)
    assert broker_instruments_keep(broker="kite", tokens={"4", "77"}, listed_at=later) == 1
    retired, expired = broker_instruments_retire_unlisted(broker="kite", listed_at=later, today=date(2026, 12, 7))
    assert (retired, expired) == (1, 1)
    active = dict(Instrument.objects.values_list("tradingsymbol", "is_active"))
    assert active == {"INFY": True, "TCS": False, "INFY26NOVFUT": False, "SBIN": True}
    assert set(BrokerInstrument.objects.values_list("token", flat=True)) == {"1", "3", "4"}
    assert Instrument.objects.count() == 4, "nothing is deleted"
