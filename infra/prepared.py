"""Statements built once per process, for the paths every order takes, on Django's documented APIs.

Django compiles a queryset to SQL each time it is evaluated, and builds an INSERT or UPDATE afresh
for every ``save()``. On the order path that costs more CPU than PostgreSQL spends running the
statements: a filter with a ``Q`` takes about 0.6 ms to compile and 0.06 ms to run. The helpers
here build each statement once per database alias and afterwards only bind new values:

- ``Prepared``: a SELECT written as a queryset whose varying values are named parameters::

      _LIVE = Prepared(lambda p: Order.objects.filter(account_id=p.account, status__in=LIVE), account=int)
      orders = _LIVE.all(account=account.pk)          # model instances, as the queryset would give
      _ROWS = Prepared(lambda p: Order.objects.filter(account_id=p.account), values=("pk", "side"), account=int)
      rows = _ROWS.all(account=account.pk)            # tuples, as values_list("pk", "side") would give

  A parameter stands in the queryset as a marker value of its declared type (``int`` or ``str``).
  The first use runs the queryset once with the markers and records the statement Django sends
  (``connection.execute_wrapper``, Django's documented hook on every statement) and where each
  marker went in its parameters; every other value stays a constant. A model query must select its
  model's own columns (no ``select_related``; ``values=``, not ``values_list()``, for rows), which
  the columns the statement returns (the cursor's ``description``) are checked against. Rows come
  back as the queryset's would: model instances through ``Model.from_db``, each value through its
  field's ``from_db_value`` where it has one and, on SQLite, which returns dates, decimals, UUIDs
  and booleans in its own storage types, converted as Django converts them there.
- ``insert(objs)``: INSERT the unsaved instances in one statement (``pre_save`` applied, so
  ``auto_now``/``auto_now_add`` too; the primary key set on each from ``RETURNING``), as
  ``save(force_insert=True)`` would.
- ``update(obj, fields)``: UPDATE those fields of the row by primary key (``auto_now`` fields in
  the list refreshed), as ``save(update_fields=...)`` would; returns the rows changed.

The INSERT and UPDATE are written out here from the model's fields (``Field.column``), quoted as
standard SQL, with every value a parameter prepared by its field (``get_db_prep_save``).
Like ``QuerySet.update()`` and ``bulk_create()``, ``insert`` and ``update`` send no model signals:
use them only for models nothing listens to (no history tracking, no cache invalidation).

Every statement runs on a cursor from ``connection.cursor()``, so execute wrappers (statement
counting, error translation) and query logging apply as to any other.

What this relies on beyond Django's documented API is listed in docs/architecture.md ("What we
rely on in our dependencies"), each with the test that fails if it changes.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import connections, models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime, parse_time

_marker_ids = itertools.count(1)
_AUTO_FIELDS = (models.AutoField, models.BigAutoField, models.SmallAutoField)


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
    model: type[models.Model] | None  # rows become instances of this model, else tuples
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, converter)


class Prepared:
    """A queryset turned into SQL once per database alias and run again with new parameter values.

    ``build`` returns a model queryset; ``values`` names the fields (or annotations) to return as
    tuples instead of instances, as ``values_list(*values)`` would, or as bare values with ``flat``.
    """

    def __init__(
        self,
        build: Callable[[Any], models.QuerySet],  # Any: a _Params, whose attributes are the parameters
        *,
        values: tuple[str, ...] = (),
        flat: bool = False,
        **params: type,
    ) -> None:
        for name, kind in params.items():
            if kind not in (int, str):
                raise TypeError(f"prepared parameter {name!r} is int or str, not {kind.__name__}")
        if flat and len(values) != 1:
            raise TypeError("a flat prepared query names one value")
        self._build = build
        self._values = tuple(values)
        self._flat = flat
        self._params = params
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, using: str) -> _Compiled:
        connection = connections[using]
        markers = {name: _marker(kind) for name, kind in self._params.items()}
        queryset = self._build(_Params(markers))
        model = queryset.model
        if self._values:
            queryset = queryset.values_list(*self._values)
        seen: list[tuple[str, list, list[str]]] = []

        def record(execute, sql, params, many, context):
            result = execute(sql, params, many, context)
            names = [column[0] for column in context["cursor"].description or ()]
            seen.append((sql, list(params or ()), names))
            return result

        with connection.execute_wrapper(record):
            list(queryset.using(using))
        if len(seen) != 1:
            raise ValueError(f"a prepared query runs one statement, this one ran {len(seen)}")
        sql, params, names = seen[0]
        by_value = {value: name for name, value in markers.items()}
        slots = tuple((True, by_value[p]) if _is_marker(p, by_value) else (False, p) for p in params)
        missing = set(markers) - {value for is_param, value in slots if is_param}
        if missing:
            raise ValueError(f"prepared parameters not found in the statement: {sorted(missing)}")
        if self._values:
            fields = [_field_named(model, name) for name in self._values]
            attnames: tuple[str, ...] = ()
        else:
            fields = _concrete_fields(model)
            if names != [f.column for f in fields]:
                raise TypeError(
                    "a prepared model query selects its model's own columns: no select_related(), values() "
                    "or values_list() (name the values with values=)"
                )
            attnames = tuple(f.attname for f in fields)
        converters = tuple(
            (position, convert)
            for position, field in enumerate(fields)
            if field is not None and (convert := _converter(field, connection.vendor)) is not None
        )
        return _Compiled(sql, slots, None if self._values else model, attnames, converters)

    def _run(self, using: str, values: dict[str, Any]) -> tuple[_Compiled, list]:
        if values.keys() != self._params.keys():
            raise TypeError(f"prepared query takes {sorted(self._params)}, got {sorted(values)}")
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        params = [values[value] if is_param else value for is_param, value in compiled.slots]
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            converted = []
            for row in rows:
                row = list(row)
                for position, convert in compiled.converters:
                    row[position] = convert(row[position])
                converted.append(row)
            rows = converted
        return compiled, rows

    def all(self, using: str = "default", **values) -> list:
        """Return the model instances (a model query) or tuples (``values=``) the query selects, or
        bare values (``flat``)."""
        compiled, rows = self._run(using, values)
        if compiled.model is not None:
            from_db = compiled.model.from_db
            return [from_db(using, compiled.attnames, row) for row in rows]
        if self._flat:
            return [row[0] for row in rows]
        return [tuple(row) for row in rows]

    def first(self, using: str = "default", **values):
        """Return the first result of ``all`` or None (give the queryset its ordering and ``[:1]``)."""
        results = self.all(using, **values)
        return results[0] if results else None


def _is_marker(value: Any, by_value: dict[Any, str]) -> bool:
    # bool is an int: True == 1 must not match a marker (markers are never 0 or 1 anyway)
    return type(value) in (int, str) and value in by_value


def _concrete_fields(model: type[models.Model]) -> list[Any]:  # concrete Fields (django-stubs: a union)
    """The fields with a column in the model's table, in the model's order (what ``Model.from_db`` takes)."""
    return [f for f in model._meta.get_fields() if f.concrete and not f.many_to_many]


def _field_named(model: type[models.Model], name: str) -> Any:  # a concrete Field, or None
    """The field ``values_list`` would read for ``name``; None for an annotation."""
    if name == "pk":
        return model._meta.pk
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


# --- values as the queryset would give them -------------------------------------------------------
def _converter(field: models.Field, vendor: str) -> Callable[[Any], Any] | None:
    """The conversion of ``field``'s column as read from ``vendor``'s driver, or None when there is none."""
    if vendor == "postgresql":
        storage = None  # psycopg returns each column as its Python type
    elif vendor == "sqlite":
        storage = _sqlite_converter(field)
    else:
        raise NotImplementedError(f"prepared statements support PostgreSQL and SQLite, not {vendor}")
    from_db_value = getattr(field, "from_db_value", None)
    if from_db_value is None:
        return storage
    connection = None  # no field of ours reads it; JSONField does not

    def convert(value):
        if storage is not None:
            value = storage(value)
        return from_db_value(value, field, connection)

    return convert


def _sqlite_converter(field: Any) -> Callable[[Any], Any] | None:
    """SQLite keeps dates and times as text, decimals as floats, UUIDs as hex and booleans as 0/1."""
    kind = field.get_internal_type()
    if kind == "DateTimeField":

        def to_datetime(value):
            if value is None:
                return None
            if not isinstance(value, datetime.datetime):
                value = parse_datetime(value)
            if settings.USE_TZ and timezone.is_naive(value):
                value = value.replace(tzinfo=datetime.UTC)  # Django stores UTC in SQLite
            return value

        return to_datetime
    if kind == "DateField":
        return lambda value: value if value is None or isinstance(value, datetime.date) else parse_date(value)
    if kind == "TimeField":
        return lambda value: value if value is None or isinstance(value, datetime.time) else parse_time(value)
    if kind == "DecimalField":
        from_float = decimal.Context(prec=15).create_decimal_from_float
        exponent = decimal.Decimal(1).scaleb(-field.decimal_places)
        context = decimal.Context(prec=field.max_digits)
        return lambda value: None if value is None else from_float(value).quantize(exponent, context=context)
    if kind == "UUIDField":
        return lambda value: value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(value)
    if kind == "BooleanField":
        return lambda value: value if value is None else bool(value)
    return None


# --- writes ----------------------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'  # standard SQL, as PostgreSQL and SQLite read it


_insert_sql: dict[tuple, tuple[str, list, models.Field | None]] = {}  # (model, rows) -> SQL, fields, returned key
_update_sql: dict[tuple, tuple[str, list]] = {}
_M = TypeVar("_M", bound=models.Model)


def insert(objs: list[_M], using: str = "default") -> list[_M]:
    """INSERT unsaved instances of one model in one statement and set their primary keys; return them."""
    if not objs:
        return objs
    model = type(objs[0])
    connection = connections[using]
    key = (model, len(objs))
    cached = _insert_sql.get(key)
    if cached is None:
        meta = model._meta
        returned: Any = meta.pk if isinstance(meta.pk, _AUTO_FIELDS) else None
        fields = [f for f in _concrete_fields(model) if f is not returned]
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        # Names come from the model's fields, quoted; values are always parameters.
        table, columns, rows_sql = (
            _quote(meta.db_table),
            ", ".join(_quote(f.column) for f in fields),
            ", ".join([row] * len(objs)),
        )
        sql = f"INSERT INTO {table} ({columns}) VALUES {rows_sql}"  # noqa: S608  # nosec B608 - see above
        if returned is not None:
            sql += f" RETURNING {_quote(returned.column)}"
        cached = _insert_sql[key] = (sql, fields, returned)
    sql, fields, returned = cached
    params = []
    for obj in objs:
        _take_parent_keys(obj, fields)
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall() if returned is not None else [()] * len(objs)
    for obj, row in zip(objs, rows, strict=True):
        if returned is not None:
            setattr(obj, returned.attname, row[0])
        obj._state.adding = False
        obj._state.db = using
    return objs


def _take_parent_keys(obj: models.Model, fields: list[models.Field]) -> None:
    """Set the key of each parent assigned to ``obj`` before the parent was saved, as ``save()`` does;
    raise ValueError for a parent still unsaved."""
    for field in fields:
        if field.many_to_one and getattr(obj, field.attname) is None:
            try:
                parent = getattr(obj, field.name)  # no query: with no key there is nothing to fetch
            except ObjectDoesNotExist:
                continue  # no parent assigned: the row's NOT NULL refuses it, as save()'s would
            if parent is None:
                continue
            if parent.pk is None:
                raise ValueError(
                    f"insert() prohibited to prevent data loss due to unsaved related object '{field.name}'."
                )
            setattr(obj, field.name, parent)  # sets the key from the saved parent


def update(obj: models.Model, fields: list[str], using: str = "default") -> int:
    """UPDATE ``fields`` (names or attnames) of ``obj``'s row by primary key; return the rows changed."""
    model = type(obj)
    connection = connections[using]
    key = (model, tuple(fields))
    cached = _update_sql.get(key)
    if cached is None:
        meta = model._meta
        targets: list[Any] = [meta.get_field(name) for name in fields]  # concrete fields, as save() takes
        # Names come from the model's fields, quoted; values are always parameters.
        table, sets = _quote(meta.db_table), ", ".join(f"{_quote(f.column)} = %s" for f in targets)
        sql = f"UPDATE {table} SET {sets} WHERE {_quote(meta.pk.column)} = %s"  # noqa: S608  # nosec B608 - see above
        cached = _update_sql[key] = (sql, targets)
    sql, targets = cached
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in targets]
    params.append(model._meta.pk.get_db_prep_value(obj.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
