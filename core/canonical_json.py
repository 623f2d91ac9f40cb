"""Canonical JSON: one byte-exact encoding per value, so that a hash over it can be recomputed.

Keys are sorted, there is no whitespace, text is UTF-8 (not \\u-escaped). Python values that JSON has
no type for are encoded deterministically:

- ``Decimal`` -> its exact string (``Decimal("1.10")`` -> ``"1.10"``; money never passes through float)
- aware ``datetime`` -> UTC ISO 8601 with microseconds and ``Z`` (``"2026-11-25T06:15:00.000000Z"``)
- ``date`` -> ``"2026-11-25"``, ``UUID`` -> its hyphenated lower-case form
- tuples -> lists; ``str``/``int`` subclasses (TextChoices, IntegerChoices) -> their plain values

Everything else is rejected with ``CanonicalJSONError`` naming where the bad value sits: naive
datetimes (ambiguous instant), NaN and infinities, non-string keys (JSON would silently coerce them),
sets (no order), bytes and arbitrary objects.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

__all__ = ["CanonicalJSONError", "canonical_dumps", "format_utc", "normalise"]


class CanonicalJSONError(ValueError):
    """A value has no canonical JSON form; ``path`` says where it is (``$.legs[0].price``)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def format_utc(value: dt.datetime) -> str:
    """Return an aware datetime as UTC ISO 8601 with microseconds and ``Z``; raise ValueError if naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime has no time zone")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise(value: Any, path: str = "$") -> Any:
    """Return ``value`` made of JSON primitives only (dict, list, str, int, float, bool, None).

    Raises CanonicalJSONError for any value without a deterministic encoding.
    """
    # bool before int: bool is an int subclass.
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalJSONError(path, f"{value!r} is not a finite number")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CanonicalJSONError(path, f"Decimal {value} is not a finite number")
        return str(value)
    if isinstance(value, dt.datetime):
        try:
            return format_utc(value)
        except ValueError:
            raise CanonicalJSONError(path, "datetime without a time zone (use an aware UTC datetime)") from None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(path, f"key {key!r} is a {type(key).__name__}, keys must be strings")
            result[str(key)] = normalise(item, f"{path}.{key}")
        return result
    if isinstance(value, list | tuple):
        return [normalise(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise CanonicalJSONError(path, f"a {type(value).__name__} is not JSON-serialisable")


def canonical_dumps(value: Any) -> str:
    """Return the canonical JSON text of ``value``; raise CanonicalJSONError if it has none."""
    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
