"""Angel One's scrip master (``OpenAPIScripMaster.json``, the broker's "master" endpoint): one JSON
array of objects ``{"token", "symbol", "name", "expiry", "strike", "lotsize", "instrumenttype",
"exch_seg", "tick_size"}``, every value a string. ``token`` is the exchange's own token (NSE's 2885
for RELIANCE), which our symbol master keeps as ``Instrument.exchange_token``; ``symbol`` is Angel's
trading symbol ("RELIANCE-EQ"); ``exch_seg`` its exchange segment (NSE, BSE, NFO, BFO, MCX, CDS; also
NCDEX and others we do not trade, which are skipped).

The download needs no session. ``parse_master`` yields a ``MasterRow`` per instrument of our exchanges
(its mapping token "NSE:2885", see ``families.angel.mapping``) and ``(line, why)`` for an entry that
cannot be read, ``line`` being its place in the array from 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from brokers import catalogue
from brokers.adapters.base import BrokerUnavailable
from brokers.families.master import MasterRow
from brokers.families.wire import pooled_http, transport_error
from families.angel.mapping import OUR_EXCHANGES, token_key

MASTER_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=5.0, pool=5.0)
MAX_MASTER_BYTES = 512 * 1024 * 1024


def download_master(broker: str) -> bytes:
    """The broker's scrip master file, as downloaded. Raises BrokerUnreachable or BrokerUnavailable."""
    url = catalogue.endpoint(broker, "master")
    try:
        response = pooled_http(url).get(url, timeout=MASTER_TIMEOUT, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise transport_error(exc, broker="Angel One's scrip master") from exc
    if response.status_code != 200:
        raise BrokerUnavailable(
            f"Angel One's scrip master answered HTTP {response.status_code}",
            extra={"http_status": response.status_code},
        )
    if len(response.content) > MAX_MASTER_BYTES:
        raise BrokerUnavailable("Angel One's scrip master is larger than any it has published", extra={})
    return response.content


def parse_master(content: bytes) -> Iterator[MasterRow | tuple[int, str]]:
    """The file's instruments of our exchanges (module docstring). Raises BrokerUnavailable for a
    file that is not a JSON array."""
    try:
        entries = json.loads(content)
    except (ValueError, RecursionError):
        raise BrokerUnavailable("Angel One's scrip master is not JSON", extra={"malformed": "master"}) from None
    if not isinstance(entries, list):
        raise BrokerUnavailable("Angel One's scrip master is not a JSON array", extra={"malformed": "master"})
    for line, entry in enumerate(entries, start=1):
        row = _row(entry)
        if isinstance(row, str):
            yield (line, row)
        elif row is not None:
            yield row


def _row(entry: Any) -> MasterRow | str | None:
    """The entry's MasterRow, None for an exchange we do not trade, or why it cannot be read."""
    if not isinstance(entry, Mapping):
        return "not an object"
    segment, token, symbol = entry.get("exch_seg"), entry.get("token"), entry.get("symbol")
    if not isinstance(segment, str) or not segment.strip():
        return "no exch_seg"
    exchange = OUR_EXCHANGES.get(segment.strip().upper())
    if exchange is None:
        return None
    if isinstance(token, int) and not isinstance(token, bool):
        token = str(token)
    if not isinstance(token, str) or not token.strip().isascii() or not token.strip().isdigit() or len(token) > 20:
        return f"token {str(token)[:30]!r} is not a number"
    if not isinstance(symbol, str) or not symbol.strip() or len(symbol) > 64:
        return "no symbol"
    token = token.strip()
    return MasterRow(
        exchange=exchange,
        exchange_token=token,
        token=token_key(segment.strip().upper(), token),
        tradingsymbol=symbol.strip(),
        broker_exchange=segment.strip().upper(),
    )
