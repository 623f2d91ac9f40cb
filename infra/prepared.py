"""ORM statements compiled to SQL once per process, for the paths every order takes.

Django compiles a queryset to SQL each time it is evaluated, and builds an INSERT or UPDATE afresh
for every ``save()``. On the order path that costs more CPU than PostgreSQL spends running the
statements: a filter with a ``Q`` takes about 0.6 ms to compile and 0.06 ms to run. The helpers
here keep the ORM as the one place a statement is written, compile it on first use for each
database alias, and afterwards only bind new values:

- ``Prepared``: a SELECT written as a queryset whose varying values are named parameters::

      _LIVE = Prepared(lambda p: Order.objects.filter(account_id=p.account, status__in=LIVE), account=int)
      orders = _LIVE.all(account=account.pk)          # model instances, as the queryset would give
      rows = _VALUES.all(account=account.pk)         # tuples, for a values_list() queryset

  A parameter stands in the queryset as a marker value of its declared type (``int`` or ``str``)
  that Django passes through to the statement's parameters unchanged; compiling finds where each
  marker went. Every other value is compiled in as a constant. Rows come back through the backend's
  and the fields' converters, as the queryset's would.
- ``insert(objs)``: INSERT the unsaved instances in one statement (``auto_now``/``auto_now_add``
  applied, the primary key set on each from RETURNING), as ``save(force_insert=True)`` would.
- ``update(obj, fields)``: UPDATE those fields of the row by primary key (``auto_now`` fields in
  the list refreshed), as ``save(update_fields=...)`` would; returns the rows changed.

Like ``QuerySet.update()`` and ``bulk_create()``, ``insert`` and ``update`` send no model signals:
use them only for models nothing listens to (no history tracking, no cache invalidation).

Every statement runs on a cursor from ``connection.cursor()``, so execute wrappers (statement
counting, error translation) and query logging apply as to any other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.models.query import FlatValuesListIterable, ModelIterable, ValuesListIterable

_marker_ids = itertools.count(1)


class _Params:
    """What a ``Prepared`` builder receives: each declared parameter as its marker value."""

    def __init__(self, markers: dict[str, Any]) -> None:
        self.__dict__.update(markers)


def _marker(kind: type) -> Any:
    n = next(_marker_ids)
    if kind is int:
        return -(7 << 59) - n  # a bigint no key or quantity will ever be
    if kind is str:
        return f"\x1fprepared-parameter-{n}\x1f"
    raise AssertionError(kind)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    slots: tuple[tuple[bool, Any], ...]  # (is a parameter, its name or the constant value)
    kind: str  # "models", "rows" or "flat"
    model: type[models.Model]
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, tuple, Any], ...]  # (column, converters, expression)


class Prepared:
    """A queryset compiled once per database alias and run again with new parameter values."""

    def __init__(self, build: Callable[[_Params], models.QuerySet], **params: type) -> None:
        for name, kind in params.items():
            if kind not in (int, str):
                raise TypeError(f"prepared parameter {name!r} is int or str, not {kind.__name__}")
        self._build = build
        self._params = params
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, using: str) -> _Compiled:
        markers = {name: _marker(kind) for name, kind in self._params.items()}
        queryset = self._build(_Params(markers))
        iterable = queryset._iterable_class
        if iterable is ModelIterable:
            kind = "models"
        elif iterable is ValuesListIterable:
            kind = "rows"
        elif iterable is FlatValuesListIterable:
            kind = "flat"
        else:
            raise TypeError("a prepared query is a model queryset or a values_list() one")
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        by_value = {value: name for name, value in markers.items()}
        slots = tuple((True, by_value[p]) if _is_marker(p, by_value) else (False, p) for p in params)
        missing = set(markers) - {value for is_param, value in slots if is_param}
        if missing:
            raise ValueError(f"prepared parameters not found in the compiled statement: {sorted(missing)}")
        columns = [column for column, _sql, _alias in compiler.select[: compiler.col_count]]
        attnames: tuple[str, ...] = ()
        if kind == "models":
            if compiler.klass_info is None or compiler.klass_info.get("related_klass_infos"):
                raise TypeError("a prepared model query selects one model's own columns (no select_related)")
            attnames = tuple(column.target.attname for column in columns)
        converters = tuple(
            (position, tuple(convs), expression)
            for position, (convs, expression) in compiler.get_converters(columns).items()
        )
        return _Compiled(sql, slots, kind, queryset.model, attnames, converters)

    def _run(self, using: str, values: dict[str, Any]) -> tuple[_Compiled, list]:
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        if values.keys() != self._params.keys():
            raise TypeError(f"prepared query takes {sorted(self._params)}, got {sorted(values)}")
        params = [values[value] if is_param else value for is_param, value in compiled.slots]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            converted = []
            for row in rows:
                row = list(row)
                for position, convs, expression in compiled.converters:
                    value = row[position]
                    for converter in convs:
                        value = converter(value, expression, connection)
                    row[position] = value
                converted.append(row)
            rows = converted
        return compiled, rows

    def all(self, using: str = "default", **values) -> list:
        """Return the model instances (a model queryset) or tuples (a values_list one) the query selects."""
        compiled, rows = self._run(using, values)
        if compiled.kind == "models":
            from_db = compiled.model.from_db
            return [from_db(using, compiled.attnames, row) for row in rows]
        if compiled.kind == "flat":
            return [row[0] for row in rows]
        return [tuple(row) for row in rows]

    def first(self, using: str = "default", **values):
        """Return the first result of ``all`` or None (give the queryset its ordering and ``[:1]``)."""
        results = self.all(using, **values)
        return results[0] if results else None


def _is_marker(value: Any, by_value: dict[Any, str]) -> bool:
    # bool is an int: True == 1 must not match a marker (markers are never 0 or 1 anyway)
    return type(value) in (int, str) and value in by_value


# --- writes ----------------------------------------------------------------------------------------
_insert_sql: dict[tuple, tuple[str, list, list]] = {}  # (model, alias, rows) -> SQL, fields, converters
_update_sql: dict[tuple, tuple[str, list]] = {}


def insert(objs: list[models.Model], using: str = "default") -> list[models.Model]:
    """INSERT unsaved instances of one model in one statement and set their primary keys; return them."""
    if not objs:
        return objs
    model = type(objs[0])
    connection = connections[using]
    key = (model, using, len(objs))
    cached = _insert_sql.get(key)
    if cached is None:
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]
        returning = list(meta.db_returning_fields)
        if not connection.features.can_return_rows_from_bulk_insert:
            raise NotImplementedError(f"{connection.vendor} cannot return the keys of inserted rows")
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        returning_sql, _ = connection.ops.return_insert_columns(returning)
        # Names come from the model's meta, quoted by the backend; values are always parameters.
        table, columns, rows_sql = (
            quote(meta.db_table),
            ", ".join(quote(f.column) for f in fields),
            ", ".join([row] * len(objs)),
        )
        sql = f"INSERT INTO {table} ({columns}) VALUES {rows_sql} {returning_sql}"  # noqa: S608  # nosec B608 - see above
        converters = [
            (f, f.get_db_converters(connection) + connection.ops.get_db_converters(f.cached_col)) for f in returning
        ]
        cached = _insert_sql[key] = (sql, fields, converters)
    sql, fields, converters = cached
    params = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="insert")  # a parent saved since it was assigned
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for obj, row in zip(objs, rows, strict=True):
        for value, (field, convs) in zip(row, converters, strict=True):
            for converter in convs:
                value = converter(value, field.cached_col, connection)
            setattr(obj, field.attname, value)
        obj._state.adding = False
        obj._state.db = using
    return objs


def update(obj: models.Model, fields: list[str], using: str = "default") -> int:
    """UPDATE ``fields`` (names or attnames) of ``obj``'s row by primary key; return the rows changed."""
    model = type(obj)
    connection = connections[using]
    key = (model, using, tuple(fields))
    cached = _update_sql.get(key)
    if cached is None:
        meta = model._meta
        targets = [meta.get_field(name) for name in fields]
        quote = connection.ops.quote_name
        # Names come from the model's meta, quoted by the backend; values are always parameters.
        table, sets = quote(meta.db_table), ", ".join(f"{quote(f.column)} = %s" for f in targets)
        sql = f"UPDATE {table} SET {sets} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608  # nosec B608 - see above
        cached = _update_sql[key] = (sql, targets)
    sql, targets = cached
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in targets]
    params.append(model._meta.pk.get_db_prep_value(obj.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
