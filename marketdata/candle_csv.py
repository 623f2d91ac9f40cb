"""1-minute bars from a CSV file, for ``manage.py import_candles --csv``.

The file has a header row naming its columns, in any order: ``timestamp``, ``open``, ``high``, ``low``,
``close``, ``volume`` and optionally ``oi``; other columns are ignored. ``timestamp`` is the minute the
bar opens, ISO 8601 (``2026-01-05T09:15:00+05:30``, ``2026-01-05 03:45:00Z``) or without a zone, read
as IST (``2026-01-05 09:15``); it must fall on a whole minute. Prices are decimals with at most four
places and ten digits before the point, high the highest and low the lowest of the four; volume and
oi are whole numbers from 0. One symbol a file: the command names it with ``--symbol``.

``read_candle_csv`` yields ``(line, Bar)`` for each good row and ``(line, message)`` for each bad one,
so a caller reports every bad line by its number and decides whether to write anything.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from marketdata.candles import Bar
from marketdata.hours import IST

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
OPTIONAL = ("oi",)
MAX_PRICE = Decimal("9999999999.9999")  # Candle's DecimalField(max_digits=14, decimal_places=4)
MAX_COUNT = 2**63 - 1  # BigIntegerField
MAX_FIELD = 64  # characters of one value; anything longer is not a number or a time we read


class BadRow(ValueError):
    """One row that cannot be a bar; ``str()`` says why."""


class BadHeader(ValueError):
    """The header row lacks a required column (or the file is empty)."""


def _text(row: dict[str, str | None], name: str) -> str:
    value = row.get(name)
    if value is None:
        raise BadRow(f"{name} is missing")
    value = value.strip()
    if not value:
        raise BadRow(f"{name} is empty")
    if len(value) > MAX_FIELD or "\x00" in value:
        raise BadRow(f"{name} is not readable ({len(value)} characters)")
    return value


def parse_timestamp(value: str) -> datetime:
    """Return the aware UTC minute a bar's ``timestamp`` names; raises BadRow."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise BadRow(f"timestamp {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    if moment.second or moment.microsecond:
        raise BadRow(f"timestamp {value!r} is not on a whole minute")
    if not 1990 <= moment.year <= 2200:
        raise BadRow(f"timestamp {value!r} is out of range")
    return moment.astimezone(UTC)


def _price(row: dict[str, str | None], name: str) -> Decimal:
    value = _text(row, name)
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise BadRow(f"{name} {value!r} is not a number") from None
    if not price.is_finite() or price <= 0 or price > MAX_PRICE:
        raise BadRow(f"{name} {value!r} is not a price between 0 and {MAX_PRICE}")
    if price != price.quantize(Decimal("0.0001"), rounding="ROUND_DOWN"):
        raise BadRow(f"{name} {value!r} has more than 4 decimal places")
    return price


def _count(row: dict[str, str | None], name: str) -> int:
    value = _text(row, name)
    if not (value.isascii() and value.isdigit()):
        raise BadRow(f"{name} {value!r} is not a whole number from 0")
    count = int(value)
    if count > MAX_COUNT:
        raise BadRow(f"{name} {value!r} is too large")
    return count


def parse_row(row: dict[str, str | None], *, instrument_id: int) -> Bar:
    """Return the bar of one CSV row (a ``csv.DictReader`` row); raises BadRow naming the field."""
    if None in row:
        raise BadRow("the row has more values than the header has columns")
    ts = parse_timestamp(_text(row, "timestamp"))
    open_, high, low, close = (_price(row, name) for name in ("open", "high", "low", "close"))
    if high < max(open_, close, low) or low > min(open_, close):
        raise BadRow("high must be the highest and low the lowest of open, high, low and close")
    oi = _count(row, "oi") if (row.get("oi") or "").strip() else 0
    return Bar(instrument_id, ts, open_, high, low, close, _count(row, "volume"), oi)


def read_candle_csv(lines: Iterable[str], *, instrument_id: int) -> Iterator[tuple[int, Bar | str]]:
    """Yield ``(line number, Bar)`` per good row and ``(line number, message)`` per bad one; blank
    lines are skipped. Raises BadHeader when the header lacks a required column."""
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise BadHeader(f"line 1: {exc}") from None
    if not header:
        raise BadHeader("the file is empty: the first line names the columns")
    reader.fieldnames = names = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise BadHeader(f"line 1: the header lacks {', '.join(missing)} (columns: {', '.join(REQUIRED)}[, oi])")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"not a CSV row ({exc})"
            continue
        try:
            yield reader.line_num, parse_row(row, instrument_id=instrument_id)
        except BadRow as exc:
            yield reader.line_num, str(exc)
