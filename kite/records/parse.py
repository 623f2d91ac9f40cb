"""Kite's JSON fields read as typed values: the shared readers every record parser uses.

Numbers become ``Decimal`` or ``int`` (never a float); timestamps, which Kite sends as
``"YYYY-MM-DD HH:MM:SS"`` in IST without a zone, become aware datetimes in UTC. A reader raises
``ValueError``/``KeyError``/``TypeError`` on a shape it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")

_IST_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_TIME_ONLY = re.compile(r"\d{2}:\d{2}:\d{2}")
_MAX_INT = 2**63


# --- field readers ---------------------------------------------------------------------------------


def kite_time(value: Any) -> datetime | None:
    """Kite's IST wall-clock stamp (or an ISO stamp with an offset) as an aware UTC datetime.

    None, "" and a bare ``HH:MM:SS`` (the trade book's ``order_timestamp``) give None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("timestamp is not a string")
    if _IST_STAMP.fullmatch(value):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST).astimezone(UTC)
    if _TIME_ONLY.fullmatch(value):
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=IST)
    return parsed.astimezone(UTC)


def dec(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise TypeError("not a number")
    if isinstance(value, Decimal | int):
        result = Decimal(value)
    elif isinstance(value, str):
        result = Decimal(value.strip())
    else:
        raise TypeError("not a number")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None or value == "" else dec(value)


def num(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise TypeError("not an integer")
    if isinstance(value, int):
        result = value
    else:
        number = dec(value)
        if abs(number) > _MAX_INT or number != number.to_integral_value():
            raise ValueError("not an integer in range")
        result = int(number)
    if abs(result) > _MAX_INT:
        raise ValueError("integer out of range")
    return result


def opt_num(value: Any) -> int | None:
    return None if value is None or value == "" else num(value)


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError("not a string")


def opt_text(value: Any) -> str | None:
    return None if value is None else text(value)


def strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TypeError("not a list")
    return tuple(text(v) for v in value)


def obj(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return value


def items(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return [obj(v) for v in value]


def wire(value: Decimal | int) -> str:
    """A number as Kite's form fields take it (no exponent, no float noise)."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{value!r} is not a finite Decimal")
    return format(value, "f")
