"""Dhan's security list (``api-scrip-master.csv``, DhanHQ-py _security.py) into ``MasterRow``s.

The compact file is a CSV with a header row; the columns read here, by name:
``SEM_EXM_EXCH_ID`` (NSE, BSE, MCX), ``SEM_SEGMENT`` (E equity, D derivatives, C currency,
M commodity, I index), ``SEM_SMST_SECURITY_ID`` (the exchange's token, Dhan's securityId) and
``SEM_TRADING_SYMBOL``. An index row (segment I) names no tradable instrument and is passed over; a
row whose exchange and segment Dhan does not document, or without a numeric security id or a symbol,
is reported as ``(line, why)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import httpx

from brokers import catalogue
from brokers.adapters.base import BrokerUnavailable
from brokers.families.master import MasterRow
from brokers.families.wire import configured_timeout, pooled_http, transport_error
from families.dhan import mapping

MAX_BYTES = 200 * 1024 * 1024
REQUIRED = ("SEM_EXM_EXCH_ID", "SEM_SEGMENT", "SEM_SMST_SECURITY_ID", "SEM_TRADING_SYMBOL")
# (Dhan's exchange, its segment letter) -> (our exchange, Dhan's exchange segment).
SEGMENTS: dict[tuple[str, str], tuple[str, str]] = {
    ("NSE", "E"): ("NSE", "NSE_EQ"),
    ("NSE", "D"): ("NFO", "NSE_FNO"),
    ("NSE", "C"): ("CDS", "NSE_CURRENCY"),
    ("BSE", "E"): ("BSE", "BSE_EQ"),
    ("BSE", "D"): ("BFO", "BSE_FNO"),
    ("BSE", "C"): ("BCD", "BSE_CURRENCY"),
    ("MCX", "M"): ("MCX", "MCX_COMM"),
}


def download_master(broker: str) -> bytes:
    """The broker's security list (``catalogue.endpoint(broker, "master")``). Raises
    BrokerUnreachable or BrokerUnavailable when it cannot be had whole."""
    url = catalogue.endpoint(broker, "master")
    try:
        response = pooled_http(url).get(url, timeout=configured_timeout())
    except httpx.HTTPError as exc:
        raise transport_error(exc, broker="Dhan") from exc
    if response.status_code != 200:
        raise BrokerUnavailable(
            f"Dhan's security list answered HTTP {response.status_code}", extra={"http_status": response.status_code}
        )
    if len(response.content) > MAX_BYTES:
        raise BrokerUnavailable("Dhan's security list is larger than any real one", extra={"bytes": MAX_BYTES})
    return response.content


def parse_master(content: bytes) -> Iterator[MasterRow | tuple[int, str]]:
    """The file's instruments, and ``(line, why)`` for each row that cannot be read. A file without
    the columns it needs is one such ``(1, why)``."""
    text = content.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        yield (1, f"the header lacks {', '.join(missing)}")
        return
    for row in reader:
        line = reader.line_num
        try:
            exchange = (row["SEM_EXM_EXCH_ID"] or "").strip().upper()
            segment_letter = (row["SEM_SEGMENT"] or "").strip().upper()
            security_id = (row["SEM_SMST_SECURITY_ID"] or "").strip()
            symbol = (row["SEM_TRADING_SYMBOL"] or "").strip()
        except (KeyError, AttributeError):
            yield (line, "the row has fewer columns than the header")
            continue
        if segment_letter == "I":
            continue  # an index: quoted, never traded
        names = SEGMENTS.get((exchange, segment_letter))
        if names is None:
            yield (line, f"unknown exchange and segment {exchange[:10]!r}/{segment_letter[:4]!r}")
            continue
        if not (security_id.isascii() and security_id.isdigit()) or len(security_id) > 20:
            yield (line, f"security id {security_id[:20]!r} is not a number")
            continue
        if not symbol or len(symbol) > 64:
            yield (line, "no trading symbol (or one over 64 characters)")
            continue
        ours, segment = names
        yield MasterRow(
            exchange=ours,
            exchange_token=security_id,
            token=mapping.token_of(segment, security_id),
            tradingsymbol=symbol,
            broker_exchange=segment,
        )
