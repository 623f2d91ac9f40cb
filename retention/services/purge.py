"""Delete archived months that have left the retention window (docs/retention.md, "Purging").

Only rows that are in a verified archive are deleted, month by month, each in one transaction: trades,
then order events, then the orders left without events or trades (an order whose later events or
trades are not purged yet waits for their month). Organisations under a legal hold are skipped; the
database would refuse their rows anyway. The audit trail is never purged: it is append-only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.db.models import Min
from django.utils import timezone

from orders.models import Order, OrderEvent, Trade
from retention.errors import ArchiveMissing, PurgeRefused
from retention.guard import retention_errors
from retention.models import LegalHold
from retention.months import Month
from retention.policy import cutoff
from retention.services.archive import ORG_FILES
from retention.services.verify import load_manifest, read_records, verify_archive

CHUNK = 1000


@dataclass
class PurgeSummary:
    months: list[Month] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    held: set[int] = field(default_factory=set)  # organisations skipped for a legal hold
    orders_waiting: int = 0  # archived orders kept because later events or trades still point at them


def oldest_month() -> Month | None:
    """The month of the oldest order, order event or trade still stored."""
    dates = [
        Order.objects.aggregate(at=Min("created_at"))["at"],
        OrderEvent.objects.aggregate(at=Min("created_at"))["at"],
        Trade.objects.aggregate(at=Min("executed_at"))["at"],
    ]
    present = [d for d in dates if d is not None]
    return Month.containing(min(present)) if present else None


def _months(first: Month, last: Month) -> Iterator[Month]:
    month = first
    while month <= last:
        yield month
        month = month.next()


def _chunks(keys: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def purge_through(*, through: Month, now: dt.datetime | None = None, dry_run: bool = False) -> PurgeSummary:
    """Delete the archived rows of every month up to ``through``; return what was (or would be) deleted.

    Raises PurgeRefused, before deleting anything, when ``through`` reaches into the retention window
    or a month with rows has no archive or one that fails verification.
    """
    now = now or timezone.now()
    limit = cutoff(now=now)
    if through.end > limit:
        raise PurgeRefused(
            f"{through} is inside the retention window: only months ending before {limit:%Y-%m-%d} may be purged.",
            extra={"month": str(through)},
        )
    summary = PurgeSummary()
    first = oldest_month()
    if first is None or first > through:
        return summary
    manifests: dict[Month, dict[str, Any]] = {}
    for month in _months(first, through):
        try:
            check = verify_archive(month)
        except ArchiveMissing:
            if _has_rows(month):
                raise PurgeRefused(
                    f"{month} has rows but no archive: run manage.py archive_month {month} first.",
                    extra={"month": str(month)},
                ) from None
            continue
        if not check.ok:
            raise PurgeRefused(
                f"{month}'s archive fails verification ({check.problems[0]}): nothing is purged.",
                extra={"month": str(month), "file": check.problems[0].file},
            )
        manifests[month] = load_manifest(month)
    summary.held = set(LegalHold.objects.filter(active=True).values_list("organisation_id", flat=True))
    summary.months = list(manifests)
    # Trades of every month first, then events, then orders: an order of one month whose trade falls
    # in the next is free to go once that trade is gone. Each file is one transaction.
    # A dry run deletes too, inside one transaction it then rolls back: its counts are exact.
    with transaction.atomic() if dry_run else nullcontext():
        for file in ("trades.jsonl.gz", "order_events.jsonl.gz", "orders.jsonl.gz"):
            model = ORG_FILES[file]
            for month, body in manifests.items():
                for relative, entry in sorted(body["files"].items()):
                    if not relative.endswith(f"/{file}") or entry["organisation"] in summary.held:
                        continue
                    with transaction.atomic(), retention_errors():
                        _delete(model, (record["id"] for record in read_records(month, relative, entry)), summary)
        if dry_run:
            transaction.set_rollback(True)
    return summary


def _has_rows(month: Month) -> bool:
    return (
        Order.objects.filter(created_at__gte=month.start, created_at__lt=month.end).exists()
        or OrderEvent.objects.filter(created_at__gte=month.start, created_at__lt=month.end).exists()
        or Trade.objects.filter(executed_at__gte=month.start, executed_at__lt=month.end).exists()
    )


def _delete(model: type[models.Model], keys: Iterable[Any], summary: PurgeSummary) -> None:
    table = model._meta.db_table
    for batch in _chunks(keys):
        rows = model._default_manager.filter(pk__in=batch)
        if model is Order:
            free = rows.exclude(pk__in=OrderEvent.objects.values("order_id")).exclude(
                pk__in=Trade.objects.values("order_id")
            )
            summary.orders_waiting += rows.count() - free.count()
            rows = free
        count = rows.delete()[1].get(model._meta.label, 0)
        summary.deleted[table] = summary.deleted.get(table, 0) + count
