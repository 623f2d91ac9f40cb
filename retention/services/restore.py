"""Restore a month from its archive into a scratch database (a DATABASES alias, ``scratch`` by default),
row for row: the same keys, dates and values (docs/retention.md, "Restoring")."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connections, models, transaction

from audit.models import AuditEvent
from retention.errors import ArchiveInvalid, RetentionError
from retention.months import Month
from retention.records import existing_keys, from_record, insert
from retention.services.archive import AUDIT_FILE, ORG_FILES, REFERENCE_MODELS, REFERENCES_FILE
from retention.services.verify import load_manifest, read_records, verify_archive


@dataclass
class RestoreSummary:
    month: Month
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows restored
    references: int = 0  # parent rows inserted because the scratch database lacked them


def _rows(model: type[models.Model], records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    try:
        return [from_record(model, record) for record in records]
    except ValueError as exc:
        raise ArchiveInvalid(f"{name}: {exc}", extra={"file": name}) from exc


def restore_month(*, month: Month, using: str = "scratch") -> RestoreSummary:
    """Insert ``month``'s archived rows into the database ``using``; return how many of each.

    The archive is verified first; a bad one raises ArchiveInvalid and nothing is written. Raises
    RetentionError when ``using`` is the live database, is not migrated, or already holds a row of the
    month (everything is written in one transaction: all or nothing).
    """
    if using not in connections:
        raise RetentionError(f"no database {using!r} is configured.", code="restore_database_unknown")
    connection = connections[using]
    if using == "default" or _same_database(connection.settings_dict, connections["default"].settings_dict):
        raise RetentionError("restore into a scratch database, never the live one.", code="restore_into_live")
    try:
        tables = set(connection.introspection.table_names())
    except DatabaseError as exc:
        raise RetentionError(f"the database {using!r} cannot be reached: {exc}", code="restore_database") from exc
    if not {"orders_order", "compliance_auditevent"} <= tables:
        raise RetentionError(
            f"the database {using!r} has no terminal tables: run `manage.py migrate --database {using}` first.",
            code="restore_database_not_migrated",
        )
    check = verify_archive(month)
    if not check.ok:
        problem = check.problems[0]
        raise ArchiveInvalid(f"{problem}", extra={"file": problem.file, "problems": len(check.problems)})
    body = load_manifest(month)
    summary = RestoreSummary(month=month)
    with transaction.atomic(using=using):
        for relative, entry in sorted(body["files"].items()):
            name = f"{month}/{relative}"
            if relative.endswith(REFERENCES_FILE):
                summary.references += _restore_references(list(read_records(month, relative, entry)), name, using=using)
        for relative, entry in sorted(body["files"].items(), key=lambda item: _order(item[0])):
            if relative.endswith(REFERENCES_FILE):
                continue
            model = AuditEvent if relative == AUDIT_FILE else ORG_FILES[relative.rsplit("/", 1)[-1]]
            name = f"{month}/{relative}"
            rows = _rows(model, list(read_records(month, relative, entry)), name)
            clash = existing_keys(model, (row["id"] for row in rows), using=using)
            if clash:
                raise RetentionError(
                    f"the database {using!r} already holds {len(clash)} of {name}'s rows (id {min(clash)}): "
                    "restore each month once, into an empty database.",
                    code="restore_rows_exist",
                )
            insert(model, rows, using=using)
            table = model._meta.db_table
            summary.rows[table] = summary.rows.get(table, 0) + len(rows)
    return summary


def _same_database(one: dict[str, Any], other: dict[str, Any]) -> bool:
    keys = ("ENGINE", "NAME", "HOST", "PORT")
    return all(str(one.get(key) or "") == str(other.get(key) or "") for key in keys)


def _order(relative: str) -> tuple[int, str]:
    """Orders before their events and trades; the audit events last."""
    file = relative.rsplit("/", 1)[-1]
    rank = {"orders.jsonl.gz": 0, "order_events.jsonl.gz": 1, "trades.jsonl.gz": 2}.get(file, 3)
    return rank, relative


def _restore_references(records: list[dict[str, Any]], name: str, *, using: str) -> int:
    """Insert the parent rows the scratch database lacks, parents first; return how many."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        label = record.get("model")
        if label not in REFERENCE_MODELS or not isinstance(record.get("row"), dict):
            raise ArchiveInvalid(f"{name}: a reference of unknown model {str(label)[:40]!r}", extra={"file": name})
        by_model[label].append(record["row"])
    inserted = 0
    for label, model in REFERENCE_MODELS.items():
        rows = _rows(model, by_model.get(label, []), name)
        present = existing_keys(model, (row["id"] for row in rows), using=using)
        inserted += insert(model, [row for row in rows if row["id"] not in present], using=using)
    return inserted
