"""Fyers' symbol master: ``https://public.fyers.in/sym_details/<SEGMENT>.csv`` (NSE_CM, NSE_FO, NSE_CD,
BSE_CM, BSE_FO, MCX_COM), read into ``brokers.families.master.MasterRow``s.

The files have no header. Their columns (Fyers' symbol-master documentation, as third-party readers
name them): 0 fytoken, 1 symbol details, 2 exchange instrument type, 3 lot size, 4 tick size, 5 ISIN,
6 trading session, 7 last update, 8 expiry (epoch), 9 symbol ticker ("NSE:SBIN-EQ"), 10 exchange
(10 NSE, 11 MCX, 12 BSE), 11 segment (10 capital market, 11 equity derivatives, 12 currency, 20
commodity), 12 scrip code (the exchange's own token), then the underlying's columns. A row is kept
when its fytoken, ticker, exchange and segment agree (the fytoken starts with exchange + segment and
the ticker with its exchange's prefix); any other row is reported by its line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from brokers.families.master import MasterRow
from families.fyers.mapping import SEGMENT_NAMES, SEGMENTS, TICKER_PREFIX, is_fytoken

MIN_COLUMNS = 13
MAX_LINE = 4096


def parse_master(text: str, *, source: str = "") -> Iterator[MasterRow | tuple[int, str]]:
    """Each row of one master file: a MasterRow, or ``(line, why)`` for a row that cannot be read."""
    where = f"{source}: " if source else ""
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            yield _row(row)
        except ValueError as exc:
            yield (line, f"{where}{exc}")


def _row(row: list[str]) -> MasterRow:
    if len(row) < MIN_COLUMNS:
        raise ValueError(f"{len(row)} columns, fewer than the {MIN_COLUMNS} a row has")
    fytoken, ticker = row[0].strip(), row[9].strip()
    exchange_code, segment_code, scrip = row[10].strip(), row[11].strip(), row[12].strip()
    if not is_fytoken(fytoken):
        raise ValueError("the fytoken is not 11 to 20 digits")
    if not (exchange_code.isdigit() and segment_code.isdigit()):
        raise ValueError("the exchange or segment is not a number")
    exchange = SEGMENTS.get((int(exchange_code), int(segment_code)))
    if exchange is None:
        raise ValueError(f"exchange {exchange_code[:4]} segment {segment_code[:4]} is not one we trade")
    if fytoken[:4] != f"{int(exchange_code):02d}{int(segment_code):02d}":
        raise ValueError("the fytoken does not start with the row's exchange and segment")
    if not scrip.isascii() or not scrip.isalnum() or len(scrip) > 32:
        raise ValueError("the scrip code is not the exchange's token")
    prefix = TICKER_PREFIX[exchange] + ":"
    if not ticker.startswith(prefix) or len(ticker) <= len(prefix) or len(ticker) > 64:
        raise ValueError(f"the symbol ticker does not start with {prefix!r}")
    return MasterRow(
        exchange=exchange,
        exchange_token=scrip,
        token=fytoken,
        tradingsymbol=ticker,
        broker_exchange=SEGMENT_NAMES[exchange],
    )


def parse_files(files: Iterable[tuple[str, bytes]]) -> Iterator[MasterRow | tuple[int, str]]:
    """The rows of several downloaded files, ``(name, body)``; a body that is not UTF-8 is one bad row."""
    for name, body in files:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            yield (0, f"{name}: the file is not UTF-8 text")
            continue
        yield from parse_master(text, source=name)
