"""Upstox's symbol master: the day's ``complete.json.gz`` (a gzipped JSON array, one object per
instrument: ``segment`` such as NSE_EQ or NSE_FO, ``instrument_key``, ``exchange_token``,
``trading_symbol``, ...; https://upstox.com/developer/api-documentation/instruments) read into
``brokers.families.master.MasterRow``s: our exchange from the segment, the exchange's token, and
Upstox's instrument key as the mapping's token. A row that cannot be read is ``(line, why)``, its
line being its position in the array (from 1)."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx

from brokers import catalogue
from brokers.adapters.base import BrokerUnavailable
from brokers.families.master import MasterRow
from brokers.families.wire import transport_error
from families.upstox import mapping

MAX_BYTES = 400 * 2**20  # the unzipped file is ~100 MB; anything far larger is not Upstox's master
TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=5.0, pool=5.0)


def download_master(broker: str, *, http: httpx.Client | None = None) -> bytes:
    """The broker's master file as downloaded (gzipped or not). Raises BrokerUnreachable when the
    connection cannot be made, BrokerUnavailable for any other failure or a non-200 answer."""
    url = catalogue.endpoint(broker, "master")
    client = http or httpx.Client(timeout=TIMEOUT, follow_redirects=True)
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise BrokerUnavailable(
                    f"Upstox's master download answered HTTP {response.status_code}",
                    extra={"http_status": response.status_code},
                )
            chunks, size = [], 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise BrokerUnavailable("Upstox's master download is larger than any master file")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as error:
        raise transport_error(error, broker="Upstox") from error
    finally:
        if http is None:
            client.close()


def parse_master(raw: bytes) -> Iterator[MasterRow | tuple[int, str]]:
    """The rows of a master file (gzipped or plain JSON). Raises BrokerUnavailable when the file as a
    whole is not a JSON array (a truncated or corrupt download)."""
    try:
        text = _gunzip(raw) if raw[:2] == b"\x1f\x8b" else raw
        rows = json.loads(text)
    except (OSError, EOFError, zlib.error, ValueError, RecursionError) as error:
        raise BrokerUnavailable(f"Upstox's master is not a complete JSON file ({type(error).__name__})") from error
    if not isinstance(rows, list):
        raise BrokerUnavailable("Upstox's master is not a JSON array")
    for line, row in enumerate(rows, start=1):
        try:
            yield row_of(row)
        except (KeyError, TypeError, ValueError) as error:
            yield (line, str(error.args[0]) if error.args else type(error).__name__)


def _gunzip(raw: bytes) -> bytes:
    out = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(MAX_BYTES + 1)
    if len(out) > MAX_BYTES:
        raise ValueError("the unzipped master is too large")
    return out


def row_of(row: Any) -> MasterRow:
    """One instrument object as a MasterRow; raises KeyError, TypeError or ValueError naming what is wrong."""
    if not isinstance(row, dict):
        raise TypeError("not an object")
    key, segment = _text(row, "instrument_key"), _text(row, "segment")
    exchange = mapping.EXCHANGES.get(segment)
    if exchange is None:
        raise ValueError(f"unknown segment {segment[:20]!r}")
    if mapping.segment_of(key) != segment:
        raise ValueError(f"instrument_key {key[:40]!r} is not of segment {segment}")
    token = row.get("exchange_token")
    if isinstance(token, bool) or not isinstance(token, int | str) or not str(token).strip().isdigit():
        raise ValueError("exchange_token is not a number")
    symbol = _text(row, "trading_symbol")
    if len(key) > 64 or len(symbol) > 64:
        raise ValueError("instrument_key or trading_symbol longer than 64 characters")
    return MasterRow(
        exchange=exchange,
        exchange_token=str(int(str(token).strip())),
        token=key,
        tradingsymbol=symbol,
        broker_exchange=segment,
    )


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise KeyError(f"no {name}")
    return value.strip()
