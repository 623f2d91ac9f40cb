"""Reading NorenOMS's values: every number is a string ("800.00", "180"), times are IST text
("19:59:32 13-12-2020" for ``norentm``/``exch_tm``, "01-01-1980 00:00:00" for ``fltm``) or epoch
seconds (the websocket's ``ft``). Each reader raises ValueError for a value not in that shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d{1,8})?")
_INT = re.compile(r"-?\d{1,15}")
_TIME_FORMATS = ("%H:%M:%S %d-%m-%Y", "%d-%m-%Y %H:%M:%S")


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value.strip()


def decimal(value: Any) -> Decimal:
    """A price or amount sent as text; raises ValueError for anything else."""
    raw = text(value)
    if not _NUMBER.fullmatch(raw):
        raise ValueError(f"{raw[:20]!r} is not a number")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        raise ValueError(raw[:20]) from None


def integer(value: Any) -> int:
    """A quantity sent as text ("180"; "180.00" where it is whole); raises ValueError otherwise."""
    raw = text(value)
    if _INT.fullmatch(raw):
        return int(raw)
    number = decimal(raw)
    if number != number.to_integral_value():
        raise ValueError(f"{raw[:20]!r} is not a whole number")
    return int(number)


def optional_decimal(value: Any) -> Decimal | None:
    return None if value in (None, "") else decimal(value)


def optional_integer(value: Any, default: int = 0) -> int:
    return default if value in (None, "") else integer(value)


def noren_time(value: Any) -> datetime | None:
    """A Noren time of day and date in IST as an aware UTC datetime; None when absent or a placeholder
    (Noren sends 1980 dates for times it does not know)."""
    if value in (None, ""):
        return None
    raw = text(value)
    for fmt in _TIME_FORMATS:
        try:
            moment = datetime.strptime(raw, fmt).replace(tzinfo=IST)
        except ValueError:
            continue
        return None if moment.year < 2000 else moment.astimezone(UTC)
    raise ValueError(f"{raw[:30]!r} is not a Noren time")


def epoch(value: Any) -> datetime | None:
    """Epoch seconds sent as text (the websocket's ``ft``); None when absent."""
    if value in (None, ""):
        return None
    seconds = integer(value)
    if not 0 < seconds < 10**10:
        raise ValueError("not an epoch time")
    return datetime.fromtimestamp(seconds, tz=UTC)


def wire_price(value: Decimal) -> str:
    """A price as Noren takes it: plain decimal text ("2900.05"), never an exponent."""
    if not value.is_finite() or value < 0:
        raise ValueError("a price must be a finite, non-negative number")
    return format(value, "f")
