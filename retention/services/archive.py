"""Archive a closed month: its orders, order events, trades and audit events as gzip JSON Lines, per
organisation, with a signed manifest of counts and SHA-256 digests, written once to the archives'
storage (docs/retention.md, "Archives")."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.files import File
from django.db.models import Max, Model, QuerySet
from django.utils import timezone

from accounts.models import Organisation, User
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from core.canonical_json import format_utc
from marketdata.models import Instrument
from orders.models import Order, OrderEvent, Trade
from retention import manifest
from retention.errors import ArchiveExists, MonthNotClosed
from retention.months import Month
from retention.policy import configured_years
from retention.records import records
from retention.storage import archive_storage, save_once

AUDIT_FILE = "audit_events.jsonl.gz"
# What each organisation's directory holds: file name -> model.
ORG_FILES: dict[str, type[Model]] = {
    "orders.jsonl.gz": Order,
    "order_events.jsonl.gz": OrderEvent,
    "trades.jsonl.gz": Trade,
}
REFERENCES_FILE = "references.jsonl.gz"
# The parents a month's rows point at, so a restore into an empty database can satisfy its foreign
# keys: in the order they must be inserted. Secrets are blanked (a user's password, an account's keys).
REFERENCE_MODELS: dict[str, type[Model]] = {
    "accounts.organisation": Organisation,
    "accounts.user": User,
    "marketdata.instrument": Instrument,
    "brokers.brokeraccount": BrokerAccount,
    "orders.order": Order,
}
BLANKED = {"accounts.user": {"password": "!", "email": ""}, "brokers.brokeraccount": {"credentials_ciphertext": ""}}
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveSummary:
    month: Month
    files: dict[str, dict[str, Any]]
    manifest: str

    @property
    def rows(self) -> int:
        return sum(entry["rows"] for entry in self.files.values())


class _Writer:
    """gzip JSON Lines into a temporary file (memory up to SPOOL_BYTES, then disk), counting rows."""

    def __init__(self) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed in close()
        # mtime 0 and no file name: the same rows always give the same bytes.
        self.gzip = gzip.GzipFile(fileobj=self.spool, mode="wb", mtime=0, filename="")
        self.rows = 0

    def write(self, record: dict[str, Any]) -> None:
        self.gzip.write(json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
        self.gzip.write(b"\n")
        self.rows += 1

    def finish(self) -> tuple[File, dict[str, Any]]:
        self.gzip.close()
        self.spool.seek(0)
        digest, size = hashlib.sha256(), 0
        while chunk := self.spool.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        self.spool.seek(0)
        return File(self.spool), {"rows": self.rows, "bytes": size, "sha256": digest.hexdigest()}

    def close(self) -> None:
        self.spool.close()


def _in_month(queryset: QuerySet, field: str, month: Month) -> QuerySet:
    return queryset.filter(**{f"{field}__gte": month.start, f"{field}__lt": month.end})


def month_querysets(month: Month, organisation_id: int) -> dict[str, QuerySet]:
    """The month's rows of one organisation, by archive file name."""
    return {
        "orders.jsonl.gz": _in_month(
            Order.objects.filter(account__organisation_id=organisation_id), "created_at", month
        ),
        "order_events.jsonl.gz": _in_month(
            OrderEvent.objects.filter(order__account__organisation_id=organisation_id), "created_at", month
        ),
        "trades.jsonl.gz": _in_month(
            Trade.objects.filter(account__organisation_id=organisation_id), "executed_at", month
        ),
    }


def month_organisations(month: Month) -> list[int]:
    """The organisations with any order, order event or trade in ``month``."""
    ids: set[int] = set()
    ids.update(_in_month(Order.objects.all(), "created_at", month).values_list("account__organisation_id", flat=True))
    ids.update(
        _in_month(OrderEvent.objects.all(), "created_at", month).values_list(
            "order__account__organisation_id", flat=True
        )
    )
    ids.update(_in_month(Trade.objects.all(), "executed_at", month).values_list("account__organisation_id", flat=True))
    return sorted(ids)


def _heads_before(instant: dt.datetime) -> dict[int, int]:
    """Per chain, the highest sequence recorded before ``instant`` (0 for none)."""
    rows = AuditEvent.objects.filter(created_at__lt=instant).values("chain").annotate(last=Max("seq"))
    return {row["chain"]: row["last"] for row in rows}


def audit_ranges(month: Month) -> dict[int, tuple[int, int]]:
    """Per chain, the month's run of sequence numbers (first, last), both included.

    A chain's run is everything after its last event recorded before the month began, up to its last
    event recorded before the month ended: contiguous, so consecutive months partition the chain even
    where two events' times and sequence numbers disagree across the boundary.
    """
    before, until = _heads_before(month.start), _heads_before(month.end)
    return {chain: (before.get(chain, 0) + 1, last) for chain, last in until.items() if last > before.get(chain, 0)}


def _hash_at(chain: int, seq: int) -> str | None:
    return AuditEvent.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()


class _Keys:
    """The keys a month's rows point at, gathered while they are written (memory: keys, not rows)."""

    def __init__(self) -> None:
        self.orders: set[int] = set()
        self.referenced_orders: set[int] = set()
        self.accounts: set[int] = set()
        self.instruments: set[int] = set()
        self.users: set[int] = set()

    def see(self, record: dict[str, Any]) -> None:
        if "order_id" in record:
            self.referenced_orders.add(record["order_id"])
        else:
            self.orders.add(record["id"])
        for key, found in (("account_id", self.accounts), ("instrument_id", self.instruments)):
            if record.get(key) is not None:
                found.add(record[key])
        if record.get("placed_by_id") is not None:
            self.users.add(record["placed_by_id"])


def _references(keys: _Keys, organisation_id: int) -> Iterable[dict[str, Any]]:
    """The parent rows of one organisation's month, as ``{"model", "row"}`` records."""
    other_orders = Order.objects.filter(pk__in=keys.referenced_orders - keys.orders)
    for values in other_orders.values_list("account_id", "instrument_id", "placed_by_id"):
        keys.accounts.add(values[0])
        keys.instruments.add(values[1])
        if values[2] is not None:
            keys.users.add(values[2])
    wanted: dict[str, QuerySet] = {
        "accounts.organisation": Organisation.objects.filter(pk=organisation_id),
        "accounts.user": User.objects.filter(pk__in=keys.users),
        "marketdata.instrument": Instrument.objects.filter(pk__in=keys.instruments),
        "brokers.brokeraccount": BrokerAccount.objects.filter(pk__in=keys.accounts),
        "orders.order": other_orders,
    }
    for label, queryset in wanted.items():
        for row in records(queryset):
            yield {"model": label, "row": {**row, **BLANKED.get(label, {})}}


def _audit_records(ranges: dict[int, tuple[int, int]]) -> Iterable[dict[str, Any]]:
    """The month's audit events, chain by chain in sequence order."""
    for chain, (first, last) in sorted(ranges.items()):
        yield from records(AuditEvent.objects.filter(chain=chain, seq__gte=first, seq__lte=last), order="seq")


def _write_file(storage: Any, month: Month, relative: str, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    writer = _Writer()
    try:
        for record in rows:
            writer.write(record)
        content, entry = writer.finish()
        save_once(storage, f"{month}/{relative}", content)
        return entry
    finally:
        writer.close()


def _seen(rows: Iterable[dict[str, Any]], keys: _Keys) -> Iterable[dict[str, Any]]:
    for record in rows:
        keys.see(record)
        yield record


def archive_month(*, month: Month, now: dt.datetime | None = None) -> ArchiveSummary:
    """Write ``month``'s archive once; return what was written.

    Raises MonthNotClosed for a month that has not ended, and ArchiveExists when its manifest, or any
    of its files, is already stored (nothing is overwritten; a partial earlier attempt is left for an
    operator to look at).
    """
    now = now or timezone.now()
    if not month.is_closed(now):
        raise MonthNotClosed(
            f"{month} has not ended yet (it closes at {format_utc(month.end)}).", extra={"month": str(month)}
        )
    storage = archive_storage()
    name = manifest.manifest_name(month)
    if storage.exists(name):
        raise ArchiveExists(f"{month} is already archived ({name}): archives are written once.", extra={"file": name})

    files: dict[str, dict[str, Any]] = {}
    heads = {
        row["chain"]: row["last"] for row in AuditEvent.objects.values("chain").annotate(last=Max("seq")).order_by()
    }
    audit: dict[str, dict[str, Any]] = {}
    ranges = audit_ranges(month)
    if ranges:
        for chain, (first, last) in sorted(ranges.items()):
            audit[str(chain)] = {
                "first_seq": first,
                "last_seq": last,
                "prev_hash": AuditEvent.objects.get(chain=chain, seq=first).prev_hash,
                "last_hash": _hash_at(chain, last),
            }
        entry = _write_file(storage, month, AUDIT_FILE, _audit_records(ranges))
        files[AUDIT_FILE] = {"table": AuditEvent._meta.db_table, "organisation": None, **entry}

    for organisation_id in month_organisations(month):
        keys = _Keys()
        for file, queryset in month_querysets(month, organisation_id).items():
            relative = f"org-{organisation_id}/{file}"
            entry = _write_file(storage, month, relative, _seen(records(queryset), keys))
            files[relative] = {"table": ORG_FILES[file]._meta.db_table, "organisation": organisation_id, **entry}
        relative = f"org-{organisation_id}/{REFERENCES_FILE}"
        entry = _write_file(storage, month, relative, _references(keys, organisation_id))
        files[relative] = {"table": "references", "organisation": organisation_id, **entry}

    body = {
        "format": manifest.FORMAT,
        "schema": manifest.SCHEMA,
        "month": str(month),
        "from": format_utc(month.start),
        "to": format_utc(month.end),
        "created_at": format_utc(now),
        "retention_years": configured_years(),
        "files": files,
        "audit": audit,
        "heads": {str(chain): {"seq": seq, "hash": _hash_at(chain, seq)} for chain, seq in sorted(heads.items())},
    }
    document = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed below
    try:
        document.write(manifest.sign(body))
        document.seek(0)
        save_once(storage, name, File(document))
    finally:
        document.close()
    return ArchiveSummary(month=month, files=files, manifest=name)


def archived(month: Month) -> bool:
    return archive_storage().exists(manifest.manifest_name(month))
