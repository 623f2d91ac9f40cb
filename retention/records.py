"""Rows as archive records and back: every concrete column by its attribute name, as JSON values.

A record keeps each value exactly: decimals as their string, datetimes as UTC ISO 8601 with
microseconds, UUIDs and dates as strings, JSON columns as their JSON. ``insert`` writes records back
with their primary keys and dates unchanged (no ``auto_now``, no signals), through each field's
``get_db_prep_save``, so a restored row equals the archived one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import connections, models

from core.canonical_json import format_utc


def fields_of(model: type[models.Model]) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def _to_json(field: models.Field, value: Any) -> Any:
    if value is None or isinstance(field, models.JSONField):
        return value
    if isinstance(value, dt.datetime):
        return format_utc(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


def records(queryset: models.QuerySet, *, order: str = "pk", chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    """Yield each row of ``queryset`` as a record, ordered by ``order`` (the primary key), in chunks."""
    fields = fields_of(queryset.model)
    names = [f.attname for f in fields]
    for values in queryset.order_by(order).values_list(*names).iterator(chunk_size=chunk_size):
        yield {f.attname: _to_json(f, v) for f, v in zip(fields, values, strict=True)}


def from_record(model: type[models.Model], record: dict[str, Any]) -> dict[str, Any]:
    """Return the Python value of every column of ``record``; raise ValueError for a missing or bad one."""
    values = {}
    for field in fields_of(model):
        if field.attname not in record:
            raise ValueError(f"{model._meta.label} record lacks {field.attname}")
        raw = record[field.attname]
        try:
            values[field.attname] = raw if raw is None or isinstance(field, models.JSONField) else field.to_python(raw)
        except Exception as exc:  # Django's ValidationError, or a TypeError from a wrong JSON type
            raise ValueError(f"{model._meta.label}.{field.attname} holds {str(raw)[:40]!r}: {exc}") from exc
    return values


def existing_keys(model: type[models.Model], keys: Iterable[Any], *, using: str) -> set[Any]:
    found: set[Any] = set()
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == 500:
            found.update(model._default_manager.using(using).filter(pk__in=batch).values_list("pk", flat=True))
            batch = []
    if batch:
        found.update(model._default_manager.using(using).filter(pk__in=batch).values_list("pk", flat=True))
    return found


def insert(model: type[models.Model], rows: list[dict[str, Any]], *, using: str) -> int:
    """INSERT ``rows`` (column values by attribute name, from ``from_record``) as they are; return how many."""
    if not rows:
        return 0
    connection = connections[using]
    fields = fields_of(model)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    # Names come from the model's fields, quoted; values are always parameters.
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608  # nosec B608
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[f.get_db_prep_save(row[f.attname], connection) for f in fields] for row in rows])
    return len(rows)
