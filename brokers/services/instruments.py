"""Writes of the per-broker instrument mapping (``BrokerInstrument``), called by a broker family's
symbol-master import inside its one transaction. The mapping mirrors the broker's current file: a
row per instrument the file lists, stamped with the import's start; what the file no longer lists
leaves the mapping and its instrument is marked inactive (never deleted: orders, watchlists and
candles refer to it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Subquery

from brokers.models import BrokerInstrument
from marketdata.models import Instrument


@dataclass(frozen=True, slots=True)
class BrokerListing:
    """One instrument of the broker's file: our instrument's key and the broker's names for it."""

    exchange: str  # ours: with tradingsymbol, the key of Instrument
    tradingsymbol: str
    token: str
    broker_tradingsymbol: str
    broker_exchange: str


def broker_instrument_upsert_many(*, broker: str, listings: Iterable[BrokerListing], listed_at: datetime) -> int:
    """Map each listing's instrument (already in the master) to the broker's names, stamped ``listed_at``.

    A token the broker now gives another instrument (tokens are recycled after expiry) is taken from
    the row that held it. Returns the number of rows written.
    """
    listings = list(listings)
    if not listings:
        return 0
    ids = {
        (exchange, symbol): pk
        for pk, exchange, symbol in Instrument.objects.filter(
            tradingsymbol__in={item.tradingsymbol for item in listings},
            exchange__in={item.exchange for item in listings},
        ).values_list("pk", "exchange", "tradingsymbol")
    }
    wanted = {item.token: ids[(item.exchange, item.tradingsymbol)] for item in listings}
    stale_holders = [
        pk
        for pk, token, instrument_id in BrokerInstrument.objects.filter(broker=broker, token__in=wanted).values_list(
            "pk", "token", "instrument_id"
        )
        if wanted[token] != instrument_id
    ]
    if stale_holders:
        BrokerInstrument.objects.filter(pk__in=stale_holders).delete()
    rows = [
        BrokerInstrument(
            broker=broker,
            instrument_id=wanted[item.token],
            token=item.token,
            tradingsymbol=item.broker_tradingsymbol,
            exchange=item.broker_exchange,
            listed_at=listed_at,
        )
        for item in listings
    ]
    BrokerInstrument.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["broker", "instrument"],
        update_fields=["token", "tradingsymbol", "exchange", "listed_at"],
    )
    return len(rows)


def broker_instruments_keep(*, broker: str, tokens: Iterable[str], listed_at: datetime) -> int:
    """Keep the mapping (and the instruments) of tokens whose rows the file listed but could not be
    read: a garbled row keeps yesterday's contract rather than retiring it. Returns the rows kept."""
    tokens = set(tokens)
    if not tokens:
        return 0
    return BrokerInstrument.objects.filter(broker=broker, token__in=tokens).update(listed_at=listed_at)


def broker_instruments_retire_unlisted(*, broker: str, listed_at: datetime, today: date) -> tuple[int, int]:
    """End the import: instruments the file no longer lists are marked inactive and leave the mapping;
    the listed ones whose expiry has passed are marked inactive too. Returns (retired, expired)."""
    unlisted = BrokerInstrument.objects.filter(broker=broker, listed_at__lt=listed_at)
    retired = Instrument.objects.filter(pk__in=Subquery(unlisted.values("instrument_id")), is_active=True).update(
        is_active=False, updated_at=listed_at
    )
    unlisted.delete()
    expired = Instrument.objects.filter(
        pk__in=Subquery(BrokerInstrument.objects.filter(broker=broker).values("instrument_id")),
        expiry__lt=today,
        is_active=True,
    ).update(is_active=False, updated_at=listed_at)
    return retired, expired
