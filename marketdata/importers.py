"""Readers of symbol-master files: the project's CSV and the public instrument dumps of Kite Connect,
Angel One SmartAPI and Upstox. Each reader yields ``(line, row)`` pairs in the project's layout
(``sample_master.FIELDS``) or ``(line, InvalidInstrumentRow)`` for a row it cannot map; the loader
validates every row with ``clean_row`` and reports the bad ones without stopping.

Column layouts (from each broker's public documentation and SDKs):
- kite: ``instrument_token, exchange_token, tradingsymbol, name, last_price, expiry, strike,
  tick_size, lot_size, instrument_type, segment, exchange`` (indices are EQ rows in segment INDICES);
- angel: OpenAPIScripMaster.json, a JSON list of ``token, symbol, name, expiry (04APR2024),
  strike (in paise), lotsize, instrumenttype (OPTIDX, FUTSTK, AMXIDX, ...), exch_seg, tick_size
  (in paise)``; the same columns as CSV are accepted;
- upstox: the JSON instrument file (``segment, exchange, instrument_key, exchange_token,
  trading_symbol, name, instrument_type, expiry`` in epoch milliseconds, ``strike_price, lot_size,
  tick_size`` in paise, ``freeze_quantity, underlying_symbol``), or the older CSV
  (``instrument_key, exchange_token, tradingsymbol, name, last_price, expiry, strike, tick_size,
  lot_size, instrument_type, option_type, exchange``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from marketdata.errors import InvalidInstrumentRow
from marketdata.models import Exchange, InstrumentType
from marketdata.sample_master import FIELDS

FORMATS = ("csv", "kite", "angel", "upstox")
ParsedRow = tuple[int, dict[str, str] | InvalidInstrumentRow]

_IST = ZoneInfo("Asia/Kolkata")
_DERIVATIVE_SEGMENT = {"NSE": "NFO", "BSE": "BFO"}
_MAX_DIGITS = 10  # numeric(14, 4)


def open_text(path: Path) -> io.TextIOBase:
    """Open a (possibly gzip-compressed) text file; raise OSError when it cannot be read."""
    raw = path.open("rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.close()
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    raw.close()
    return path.open(encoding="utf-8-sig", newline="")


def read_rows(path: Path, fmt: str) -> Iterator[ParsedRow]:
    """Yield ``(line_or_index, row)`` for every record of ``path`` in format ``fmt``.

    Raises OSError when the file cannot be read and InvalidInstrumentRow when it is not in ``fmt``
    at all (a missing column, not JSON); a single bad record is yielded, not raised.
    """
    with open_text(path) as handle:
        head = handle.read(1)
        handle.seek(0)
        if head in "[{":
            yield from _mapped(_json_records(handle), fmt)
        else:
            yield from _mapped(csv_records(handle, fmt), fmt)


def read_csv_stream(lines: Iterable[str], fmt: str, *, strict: bool = False) -> Iterator[ParsedRow]:
    """Like ``read_rows`` for a CSV layout arriving as a text stream (an open file, a download, stdin),
    read one row at a time. ``strict``: see ``csv_records``."""
    yield from _mapped(csv_records(lines, fmt, strict=strict), fmt)


def _mapped(records: Iterable[tuple[int, dict[str, Any]]], fmt: str) -> Iterator[ParsedRow]:
    mapper = MAPPERS[fmt]
    for index, record in records:
        try:
            yield index, mapper(record)
        except InvalidInstrumentRow as exc:
            yield index, exc


def _json_records(handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InvalidInstrumentRow(f"not valid JSON: {exc}") from None
    if isinstance(data, dict):  # some dumps wrap the list: {"data": [...]}
        data = data.get("data", [])
    if not isinstance(data, list):
        raise InvalidInstrumentRow("expected a JSON list of instruments")
    for index, record in enumerate(data, start=1):
        yield index, record if isinstance(record, dict) else {}


_REQUIRED_COLUMNS = {
    "csv": {"exchange", "tradingsymbol", "exchange_token", "instrument_type"},
    "kite": {"exchange_token", "tradingsymbol", "instrument_type", "segment", "exchange"},
    "angel": {"token", "symbol", "exch_seg", "instrumenttype"},
    "upstox": {"exchange_token", "tradingsymbol", "instrument_type", "exchange"},
}


def csv_records(lines: Iterable[str], fmt: str, *, strict: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` for each row of a CSV in layout ``fmt``, from any iterable of text lines
    (line breaks kept, as a file gives them). Raises InvalidInstrumentRow when a column is missing.

    ``strict`` (for imports that must be whole or nothing) also raises, after the rows before it, on
    a row with more or fewer cells than the header, bad quoting, or a last line without its line
    break: the marks of a file cut short in transfer.
    """
    ends = _LineEnds(lines)
    reader = csv.DictReader(ends, strict=strict)
    try:
        columns = set(reader.fieldnames or ())
    except csv.Error as exc:
        raise InvalidInstrumentRow(f"the header cannot be read: {exc}") from None
    missing = _REQUIRED_COLUMNS[fmt] - columns
    if missing:
        raise InvalidInstrumentRow(
            f"the file is not a {fmt} instrument CSV: missing columns {', '.join(sorted(missing))}",
            extra={"missing": sorted(missing)},
        )
    width = len(reader.fieldnames or ())
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidInstrumentRow(
                f"after line {reader.line_num}: {exc} (cut short or malformed)", extra={"line": reader.line_num}
            ) from None
        if strict and (None in record or None in record.values()):
            cells = width + len(record.get(None) or ()) - sum(value is None for value in record.values())
            raise InvalidInstrumentRow(
                f"line {reader.line_num} has {cells} cells where the header has {width}: the file is cut short "
                "or malformed",
                extra={"line": reader.line_num},
            )
        yield reader.line_num, record
    if strict and not ends.last_complete:
        raise InvalidInstrumentRow(
            f"line {reader.line_num} has no line break: the file ends mid-row (cut short)",
            extra={"line": reader.line_num},
        )


class _LineEnds:
    """The lines of a text stream, remembering whether the last one ended with its line break."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.last_complete = True

    def __iter__(self) -> _LineEnds:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.last_complete = line.endswith(("\n", "\r"))
        return line


def cell_repr(value: str, limit: int = 40) -> str:
    """A cell as an error message quotes it: its repr, cut to ``limit`` characters (a cell can be huge)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value).strip()


def _from_project(record: dict[str, Any]) -> dict[str, str]:
    return {field: _text(record, field) for field in FIELDS}


_KITE_TYPES = {"EQ", "FUT", "CE", "PE"}
# Kite writes a contract's expiry code after its underlying: 25JAN (monthly) or 25123 / 251O07 (weekly,
# year, month 1-9 O N D, day). The underlying is read from the symbol only where the name is empty.
_KITE_EXPIRY_CODE = re.compile(r"\d{2}(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|[1-9OND]\d{2})")


def from_kite(record: dict[str, Any]) -> dict[str, str]:
    """One row of Kite Connect's instrument dump in the project's layout.

    Kite's vocabulary is ours: exchanges NSE, BSE (cash), NFO, BFO (F&O), CDS (currency), MCX (and BCD,
    which the master does not list: ``clean_row`` refuses it); segments NSE, NFO-FUT, NFO-OPT, ...
    (the exchange, then -FUT or -OPT for derivatives); types EQ, FUT, CE, PE. Indices are EQ rows of
    segment INDICES (on the exchange that computes them) and become INDEX.
    """
    segment = _text(record, "segment")
    exchange = _text(record, "exchange")
    kind = _text(record, "instrument_type")
    if kind not in _KITE_TYPES:
        raise InvalidInstrumentRow(
            f"instrument type {cell_repr(kind)} is not one of {', '.join(sorted(_KITE_TYPES))}",
            extra={"field": "instrument_type"},
        )
    is_index = segment == "INDICES"
    if not is_index and exchange in _EXCHANGES and segment.partition("-")[0] != exchange:
        raise InvalidInstrumentRow(
            f"segment {cell_repr(segment)} does not belong to exchange {cell_repr(exchange)}",
            extra={"field": "segment"},
        )
    expiry = _text(record, "expiry")
    if expiry and len(expiry) != 10:  # YYYY-MM-DD, as the SDKs read it
        raise InvalidInstrumentRow(f"expiry {cell_repr(expiry)} is not a date", extra={"field": "expiry"})
    symbol = _text(record, "tradingsymbol")
    derivative = kind in {"FUT", "CE", "PE"}
    underlying = ""
    if derivative:
        underlying = _text(record, "name")
        match = None if underlying else _KITE_EXPIRY_CODE.search(symbol, 1)
        underlying = underlying or (symbol[: match.start()] if match else "")
    return {
        "exchange": exchange,
        "segment": segment,
        "tradingsymbol": symbol,
        "exchange_token": _text(record, "exchange_token"),
        "name": _text(record, "name"),
        "instrument_type": "INDEX" if is_index else kind,
        "underlying": underlying,
        "expiry": expiry,
        "strike": "" if kind not in {"CE", "PE"} else _text(record, "strike"),
        # Kite lists indices with lot size and tick size 0: they are not traded.
        "lot_size": "1" if is_index else _text(record, "lot_size") or "1",
        "tick_size": "" if is_index else _text(record, "tick_size"),
        "freeze_quantity": "",
        "lower_circuit": "",
        "upper_circuit": "",
    }


def _paise(text: str, field: str) -> str:
    """Angel and Upstox give tick sizes (and Angel strikes) in paise; return rupees as text."""
    if not text:
        return ""
    try:
        return format(Decimal(text) / 100, "f")
    except InvalidOperation:
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} is not a number", extra={"field": field}) from None


def _whole(text: str, field: str) -> str:
    """Upstox writes quantities as floats (1800.0); return the whole number as text."""
    if not text:
        return ""
    try:
        return str(int(Decimal(text)))
    except (InvalidOperation, ValueError):
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} is not a number", extra={"field": field}) from None


_ANGEL_TYPES = {"FUTIDX": "FUT", "FUTSTK": "FUT", "AMXIDX": "INDEX", "": "EQ"}


def _from_angel(record: dict[str, Any]) -> dict[str, str]:
    exchange = _text(record, "exch_seg")
    raw_type = _text(record, "instrumenttype")
    symbol = _text(record, "symbol")
    if raw_type in {"OPTIDX", "OPTSTK"}:
        kind = symbol[-2:]
    elif raw_type in _ANGEL_TYPES:
        kind = _ANGEL_TYPES[raw_type]
    else:
        raise InvalidInstrumentRow(
            f"instrument type {cell_repr(raw_type)} is not supported", extra={"field": "instrumenttype"}
        )
    expiry = _text(record, "expiry")
    if expiry:
        try:
            expiry = datetime.strptime(expiry.title(), "%d%b%Y").date().isoformat()
        except ValueError:
            raise InvalidInstrumentRow(
                f"expiry {cell_repr(expiry)} is not like 28NOV2024", extra={"field": "expiry"}
            ) from None
    is_option = kind in {"CE", "PE"}
    return {
        "exchange": exchange,
        "segment": f"{exchange}-OPT" if is_option else f"{exchange}-FUT" if kind == "FUT" else exchange,
        "tradingsymbol": symbol,
        "exchange_token": _text(record, "token"),
        "name": _text(record, "name"),
        "instrument_type": kind,
        "underlying": _text(record, "name") if kind in {"FUT", "CE", "PE"} else "",
        "expiry": expiry,
        "strike": _paise(_text(record, "strike"), "strike") if is_option else "",
        "lot_size": _text(record, "lotsize") or "1",
        # Angel lists indices with tick size -1: they are not traded.
        "tick_size": "" if kind == "INDEX" else _paise(_text(record, "tick_size"), "tick_size"),
        "freeze_quantity": "",
        "lower_circuit": "",
        "upper_circuit": "",
    }


_UPSTOX_TYPES = {"EQUITY": "EQ", "EQ": "EQ", "INDEX": "INDEX", "FUTIDX": "FUT", "FUTSTK": "FUT", "FUT": "FUT"}


def _from_upstox(record: dict[str, Any]) -> dict[str, str]:
    segment = _text(record, "segment") or _text(record, "exchange")  # the CSV's "exchange" is NSE_EQ etc.
    exchange_part, _, kind_part = segment.partition("_")
    raw_type = _text(record, "instrument_type")
    option_type = _text(record, "option_type")
    if raw_type in {"CE", "PE"}:
        kind = raw_type
    elif raw_type in {"OPTIDX", "OPTSTK"} and option_type in {"CE", "PE"}:
        kind = option_type
    elif raw_type in _UPSTOX_TYPES:
        kind = _UPSTOX_TYPES[raw_type]
    elif kind_part == "INDEX":
        kind = "INDEX"
    else:
        raise InvalidInstrumentRow(
            f"instrument type {cell_repr(raw_type)} is not supported", extra={"field": "instrument_type"}
        )
    exchange = _DERIVATIVE_SEGMENT.get(exchange_part, exchange_part) if kind_part == "FO" else exchange_part
    expiry = _text(record, "expiry")
    if expiry.isdigit():  # the JSON file: epoch milliseconds
        expiry = datetime.fromtimestamp(int(expiry) / 1000, tz=UTC).astimezone(_IST).date().isoformat()
    is_option = kind in {"CE", "PE"}
    strike = _text(record, "strike_price") or _text(record, "strike")
    freeze = _text(record, "freeze_quantity")
    return {
        "exchange": exchange,
        "segment": "INDICES"
        if kind == "INDEX"
        else f"{exchange}-OPT"
        if is_option
        else f"{exchange}-FUT"
        if kind == "FUT"
        else exchange,
        "tradingsymbol": _text(record, "trading_symbol") or _text(record, "tradingsymbol"),
        "exchange_token": _text(record, "exchange_token"),
        "name": _text(record, "name"),
        "instrument_type": kind,
        "underlying": (_text(record, "underlying_symbol") or _text(record, "name")) if kind != "EQ" else "",
        "expiry": expiry,
        "strike": strike if is_option else "",
        "lot_size": "1" if kind == "INDEX" else _text(record, "lot_size") or "1",
        "tick_size": _paise(_text(record, "tick_size"), "tick_size"),
        "freeze_quantity": _whole(freeze, "freeze_quantity"),
        "lower_circuit": "",
        "upper_circuit": "",
    }


MAPPERS = {"csv": _from_project, "kite": from_kite, "angel": _from_angel, "upstox": _from_upstox}

_EXCHANGES = set(Exchange.values)
_TYPES = set(InstrumentType.values)


def _decimal(row: dict[str, str], field: str, *, required: bool = False, positive: bool = False) -> Decimal | None:
    text = row.get(field, "")
    if not text:
        if required:
            raise InvalidInstrumentRow(f"{field} is required", extra={"field": field})
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} is not a number", extra={"field": field}) from None
    if not value.is_finite() or value.adjusted() >= _MAX_DIGITS or value < 0:
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} is out of range", extra={"field": field})
    value = value.quantize(Decimal("0.0001"))
    if positive and value <= 0:  # after rounding: 1e-9 is no tick size
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} is out of range", extra={"field": field})
    return value


def _integer(row: dict[str, str], field: str, *, default: int | None) -> int | None:
    text = row.get(field, "")
    if not text:
        return default
    try:
        value = int(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):  # not a number, NaN, Infinity
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} is not a whole number", extra={"field": field}) from None
    if value < 1 or value > 2_000_000_000:
        raise InvalidInstrumentRow(f"{field} {cell_repr(text)} must be a positive whole number", extra={"field": field})
    return value


def clean_row(row: dict[str, str]) -> dict[str, Any]:
    """Validate a row in the project's layout; return Instrument field values or raise InvalidInstrumentRow."""
    for field, value in row.items():
        if "\x00" in value:  # no database text column takes it
            raise InvalidInstrumentRow(f"{field} contains a NUL byte", extra={"field": field})
    exchange = row.get("exchange", "")
    if exchange not in _EXCHANGES:
        raise InvalidInstrumentRow(
            f"exchange {cell_repr(exchange)} is not one of {', '.join(sorted(_EXCHANGES))}", extra={"field": "exchange"}
        )
    kind = row.get("instrument_type", "")
    if kind not in _TYPES:
        raise InvalidInstrumentRow(
            f"instrument type {cell_repr(kind)} is not one of {', '.join(sorted(_TYPES))}",
            extra={"field": "instrument_type"},
        )
    for field, limit in (("tradingsymbol", 64), ("exchange_token", 32), ("segment", 16), ("underlying", 64)):
        value = row.get(field, "")
        if field in {"tradingsymbol", "exchange_token"} and not value:
            raise InvalidInstrumentRow(f"{field} is required", extra={"field": field})
        if len(value) > limit:
            raise InvalidInstrumentRow(f"{field} is longer than {limit} characters", extra={"field": field})
    expiry: date | None = None
    if row.get("expiry"):
        try:
            expiry = date.fromisoformat(row["expiry"][:10])
        except ValueError:
            raise InvalidInstrumentRow(
                f"expiry {cell_repr(row['expiry'])} is not a date", extra={"field": "expiry"}
            ) from None
    derivative = kind in {"FUT", "CE", "PE"}
    if derivative and expiry is None:
        raise InvalidInstrumentRow(f"a {kind} contract needs an expiry", extra={"field": "expiry"})
    strike = _decimal(row, "strike", required=kind in {"CE", "PE"}, positive=True)
    tick_size = _decimal(row, "tick_size", positive=True) or Decimal("0.05")
    return {
        "exchange": exchange,
        "segment": row.get("segment") or exchange,
        "tradingsymbol": row["tradingsymbol"],
        "exchange_token": row["exchange_token"],
        "name": row.get("name", "")[:128],
        "instrument_type": kind,
        "underlying": row.get("underlying", ""),
        "expiry": expiry,
        "strike": strike if kind in {"CE", "PE"} else None,
        "lot_size": _integer(row, "lot_size", default=1),
        "tick_size": tick_size,
        "freeze_quantity": _integer(row, "freeze_quantity", default=None),
        "lower_circuit": _decimal(row, "lower_circuit"),
        "upper_circuit": _decimal(row, "upper_circuit"),
        "is_active": True,
    }
