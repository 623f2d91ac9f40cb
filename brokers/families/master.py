"""A broker family's symbol master into the broker mapping (``BrokerInstrument``), in one transaction.

The family reads its file (CSV, pipe-delimited text, JSON, zipped or gzipped: its own ``parse``) into
``MasterRow``s: for each instrument, the exchange's own token (NSE's, BSE's, MCX's: the one our
symbol master keeps as ``Instrument.exchange_token``) and the broker's names (its token, trading
symbol and exchange). ``master_import`` matches each row to our instrument by (exchange, exchange
token), the key every Indian broker's master carries, and replaces the family's mapping at once:

- the whole file is read and checked before anything is written; a file with fewer usable rows than
  ``min_rows``, or matching fewer than ``min_percent`` of the family's current mapping, is refused
  (``MasterImportRefused``) and the previous mapping stands (a truncated download must not unmap the
  market);
- rows that cannot be read are counted by line (``errors``), never fatal; rows for instruments our
  master does not hold are counted (``unmatched``) and skipped;
- what the new file no longer lists leaves the mapping and its instrument is marked inactive
  (``brokers.services.instruments``), like Kite's import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerInstrument
from brokers.services.instruments import (
    BrokerListing,
    broker_instrument_upsert_many,
    broker_instruments_retire_unlisted,
)
from core.errors import ApplicationError
from marketdata.models import Instrument

BATCH = 2000


class MasterImportRefused(ApplicationError):
    """The file is not a complete master (too short, or too different from the mapping it would replace)."""

    code = "broker_master_refused"
    status = 422


@dataclass(frozen=True, slots=True)
class MasterRow:
    """One instrument of a broker's master: ``exchange`` in our codes (NSE, BSE, NFO, BFO, CDS, BCD,
    MCX), ``exchange_token`` the exchange's token; the broker's ``token``, ``tradingsymbol`` and
    ``broker_exchange`` (its spelling of the exchange or segment)."""

    exchange: str
    exchange_token: str
    token: str
    tradingsymbol: str
    broker_exchange: str


@dataclass
class MasterReport:
    family: str
    rows: int = 0
    mapped: int = 0
    unmatched: int = 0
    duplicates: int = 0
    retired: int = 0
    expired: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, why), at most 100 kept
    error_count: int = 0

    def error(self, line: int, why: str) -> None:
        self.error_count += 1
        if len(self.errors) < 100:
            self.errors.append((line, why[:200]))


def master_import(
    family: str,
    rows: Iterable[MasterRow | tuple[int, str]],
    *,
    min_rows: int = 1,
    min_percent: int = 50,
    now: datetime | None = None,
) -> MasterReport:
    """Replace ``family``'s mapping with the instruments ``rows`` lists (a ``(line, why)`` tuple
    stands for a row that could not be read). Returns the report; raises ``MasterImportRefused``
    without writing anything when the file is too short or matches too little of today's mapping."""
    now = now or timezone.now()
    report = MasterReport(family=family)
    by_token: dict[tuple[str, str], MasterRow] = {}
    broker_tokens: set[str] = set()
    for row in rows:
        if isinstance(row, tuple):
            report.error(*row)
            continue
        report.rows += 1
        key = (row.exchange, row.exchange_token)
        if key in by_token or row.token in broker_tokens:
            report.duplicates += 1
            continue
        by_token[key] = row
        broker_tokens.add(row.token)
    if report.rows < min_rows:
        raise MasterImportRefused(
            f"The {family} master has {report.rows} readable rows, fewer than the {min_rows} a full file has:"
            " nothing was changed.",
            extra={"family": family, "rows": report.rows, "errors": report.error_count},
        )
    ours = _our_symbols({key[0] for key in by_token}, {key[1] for key in by_token})
    listings = []
    for key, row in by_token.items():
        symbol = ours.get(key)
        if symbol is None:
            report.unmatched += 1
            continue
        listings.append(BrokerListing(row.exchange, symbol, row.token, row.tradingsymbol, row.broker_exchange))
    current = BrokerInstrument.objects.filter(broker=family).count()
    if current and len(listings) * 100 < current * min_percent:
        raise MasterImportRefused(
            f"The {family} master maps {len(listings)} instruments, under {min_percent}% of the {current} mapped"
            " now: nothing was changed.",
            extra={"family": family, "mapped": len(listings), "current": current},
        )
    with transaction.atomic():
        for start in range(0, len(listings), BATCH):
            report.mapped += broker_instrument_upsert_many(
                broker=family, listings=listings[start : start + BATCH], listed_at=now
            )
        report.retired, report.expired = broker_instruments_retire_unlisted(
            broker=family, listed_at=now, today=timezone.localdate(now)
        )
        transaction.on_commit(instrument_map_invalidate)
    return report


def _our_symbols(exchanges: set[str], tokens: set[str]) -> dict[tuple[str, str], str]:
    """(exchange, exchange token) -> our trading symbol, for the instruments our master holds."""
    found: dict[tuple[str, str], str] = {}
    token_list = sorted(tokens)
    for start in range(0, len(token_list), 5000):
        for exchange, token, symbol in Instrument.objects.filter(
            exchange__in=exchanges, exchange_token__in=token_list[start : start + 5000]
        ).values_list("exchange", "exchange_token", "tradingsymbol"):
            found[(exchange, token)] = symbol
    return found
