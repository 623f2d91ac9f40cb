"""Writes of market data: symbol-master upserts, candle upserts and candle partitions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from django.db import connection, transaction

from audit.services import audit_record
from marketdata.candle_csv import read_candle_csv
from marketdata.candles import Bar
from marketdata.errors import InvalidInstrumentRow
from marketdata.gaps import duplicates_of
from marketdata.importers import ParsedRow, clean_row
from marketdata.models import Candle, Instrument

logger = logging.getLogger(__name__)

_UPDATE_FIELDS = [
    "segment",
    "exchange_token",
    "name",
    "instrument_type",
    "underlying",
    "expiry",
    "strike",
    "lot_size",
    "tick_size",
    "freeze_quantity",
    "lower_circuit",
    "upper_circuit",
    "is_active",
    "updated_at",
]


@dataclass
class UpsertReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)

    @property
    def loaded(self) -> int:
        return self.created + self.updated


def instrument_upsert_many(
    *,
    rows: Iterable[ParsedRow],
    batch_size: int = 2000,
    on_row: Callable[[], None] | None = None,
    on_batch: Callable[[list[tuple[int, dict[str, Any]]]], None] | None = None,
) -> UpsertReport:
    """Insert or update instruments keyed by (exchange, trading symbol), in bulk, one transaction per batch.

    Bad rows (unmappable, invalid, duplicated within the file, or reusing another contract's exchange
    token) are collected in the report with their line number and never stop the good ones. Returns
    the report; running it twice with the same file changes nothing the second time.

    ``on_batch`` is called in each batch's transaction with the ``(line, values)`` it wrote (a broker's
    import maps them to its tokens there). A caller that needs the whole file or nothing wraps the
    call in its own ``transaction.atomic()``: the batches then commit with it.
    """
    report = UpsertReport()
    batch: list[tuple[int, dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    for line, row in rows:
        if on_row is not None:
            on_row()
        if isinstance(row, InvalidInstrumentRow):
            report.errors.append((line, row.message))
            continue
        try:
            values = clean_row(row)
        except InvalidInstrumentRow as exc:
            report.errors.append((line, exc.message))
            continue
        key = (values["exchange"], values["tradingsymbol"])
        if key in seen:
            report.errors.append((line, f"{key[0]}:{key[1]} appears earlier in the file"))
            continue
        seen.add(key)
        batch.append((line, values))
        if len(batch) >= batch_size:
            _upsert_batch(batch, report, on_batch)
            batch = []
    if batch:
        _upsert_batch(batch, report, on_batch)
    return report


def _upsert_batch(
    batch: list[tuple[int, dict[str, Any]]],
    report: UpsertReport,
    on_batch: Callable[[list[tuple[int, dict[str, Any]]]], None] | None,
) -> None:
    tokens: dict[tuple[str, str], int] = {}
    good: list[tuple[int, dict[str, Any]]] = []
    for line, values in batch:
        token_key = (values["exchange"], values["exchange_token"])
        if token_key in tokens:
            report.errors.append((line, f"exchange token {token_key[1]} is also used on line {tokens[token_key]}"))
            continue
        tokens[token_key] = line
        good.append((line, values))
    with transaction.atomic():
        holders = {
            (exchange, token): symbol
            for exchange, token, symbol in Instrument.objects.filter(
                exchange_token__in={token for _, token in tokens}
            ).values_list("exchange", "exchange_token", "tradingsymbol")
        }
        existing = set(
            Instrument.objects.filter(tradingsymbol__in={v["tradingsymbol"] for _, v in good}).values_list(
                "exchange", "tradingsymbol"
            )
        )
        objects = []
        written = []
        now = datetime.now(UTC)
        for line, values in good:
            holder = holders.get((values["exchange"], values["exchange_token"]))
            if holder is not None and holder != values["tradingsymbol"]:
                report.errors.append(
                    (line, f"exchange token {values['exchange_token']} belongs to {values['exchange']}:{holder}")
                )
                continue
            if (values["exchange"], values["tradingsymbol"]) in existing:
                report.updated += 1
            else:
                report.created += 1
            objects.append(Instrument(updated_at=now, **values))
            written.append((line, values))
        Instrument.objects.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=["exchange", "tradingsymbol"],
            update_fields=_UPDATE_FIELDS,
        )
        if on_batch is not None:
            on_batch(written)


# --- Candles --------------------------------------------------------------------------------------

_known_partitions: set[date] = set()


def _month_start(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def _next_month(month: date) -> date:
    return date(month.year + 1, 1, 1) if month.month == 12 else date(month.year, month.month + 1, 1)


def _candles_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind FROM pg_class c WHERE c.relname = 'marketdata_candle' "
            "AND c.relnamespace = to_regnamespace(current_schema())"
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "p"  # 'p': a partitioned table (not a hypertable or plain table)


def candle_partitions_ensure(*, months: Iterable[date] | None = None, months_ahead: int = 2) -> list[str]:
    """Create the monthly candle partitions that do not exist yet: ``months`` (first days), or by default
    this month and the ``months_ahead`` after it. Returns the names created; a no-op (empty list) outside
    a partitioned PostgreSQL table (SQLite, TimescaleDB)."""
    if not _candles_partitioned():
        return []
    if months is None:
        first = _month_start(datetime.now(UTC))
        months = [first]
        for _ in range(months_ahead):
            months.append(_next_month(months[-1]))
    created = []
    with connection.cursor() as cursor:
        for month in sorted(set(months)):
            name = f"marketdata_candle_y{month:%Y}m{month:%m}"
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:
                low = datetime(month.year, month.month, 1, tzinfo=UTC)
                high = datetime(*_next_month(month).timetuple()[:3], tzinfo=UTC)
                # DDL takes no bound parameters; the bounds are datetimes computed here, not input.
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF marketdata_candle'
                    f" FOR VALUES FROM ('{low.isoformat()}') TO ('{high.isoformat()}')"
                )
                created.append(name)
                logger.info("created candle partition", extra={"partition": name})
            # Remembered once committed: a partition created in a transaction that rolls back is gone.
            transaction.on_commit(partial(_known_partitions.add, month))
    return created


def candle_upsert_many(*, bars: Iterable[Bar]) -> int:
    """Insert or replace 1-minute bars keyed by (instrument, minute); return how many were written.

    Creates a missing monthly partition first, so replaying old data never fails for want of one."""
    bars = list(bars)
    if not bars:
        return 0
    months = {_month_start(bar.ts) for bar in bars} - _known_partitions
    if months:
        candle_partitions_ensure(months=months)
    Candle.objects.bulk_create(
        [
            Candle(
                instrument_id=bar.instrument_id,
                ts=bar.ts,
                open=bar.open,
                high=bar.high,
                low=bar.low,
                close=bar.close,
                volume=bar.volume,
                oi=bar.oi,
            )
            for bar in bars
        ],
        update_conflicts=True,
        unique_fields=["instrument", "ts"],
        update_fields=["open", "high", "low", "close", "volume", "oi"],
    )
    return len(bars)


def candle_import_batch(*, bars: Iterable[Bar]) -> int:
    """Write one batch of imported 1-minute bars in one transaction (all or none); a timestamp given
    twice keeps its last bar. Returns how many bars were written. Idempotent: importing the same
    bars again rewrites them unchanged."""
    unique = {(bar.instrument_id, bar.ts): bar for bar in bars}
    with transaction.atomic():
        return candle_upsert_many(bars=unique.values())


@dataclass
class CandleCsvImport:
    """What a CSV import did: bars written, bad rows ``(line, message)`` (then nothing was written),
    the timestamps given more than once (the last row of each kept), and the first and last bar."""

    written: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    duplicates: dict[datetime, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None


def candle_import_csv(
    *,
    lines: Iterable[str],
    instrument_id: int,
    batch_size: int = 5000,
    on_row: Callable[[], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> CandleCsvImport:
    """Import 1-minute bars of one instrument from CSV ``lines`` (columns in ``marketdata.candle_csv``).

    Every row is checked before anything is written: with any bad row the report lists each by line
    number and nothing is stored. Otherwise the bars are written in batches of ``batch_size``, each in
    one transaction (``on_batch(bars)`` after each). Raises ``candle_csv.BadHeader`` for a header that
    lacks a required column."""
    report = CandleCsvImport()
    bars: list[Bar] = []
    for line, parsed in read_candle_csv(lines, instrument_id=instrument_id):
        if on_row is not None:
            on_row()
        if isinstance(parsed, str):
            report.errors.append((line, parsed))
        else:
            bars.append(parsed)
    if report.errors or not bars:
        return report
    report.duplicates = duplicates_of(bar.ts for bar in bars)
    unique = sorted({bar.ts: bar for bar in bars}.values(), key=lambda bar: bar.ts)
    report.first, report.last = unique[0].ts, unique[-1].ts
    for low in range(0, len(unique), batch_size):
        written = candle_import_batch(bars=unique[low : low + batch_size])
        report.written += written
        if on_batch is not None:
            on_batch(written)
    audit_record(
        actor="system:import_candles",
        action="candles.imported",
        target=("marketdata.instrument", instrument_id),
        payload={
            "instrument_id": instrument_id,
            "start": report.first.isoformat(),
            "end": report.last.isoformat(),
            "written": report.written,
            "source": "csv",
        },
    )
    return report
