"""The fan-out channel between a feed and the web processes' tick hubs (full stack): its name and the
format of its messages. The publisher writes them (``encode_batch``) and each hub reads them
(``decode_batch``, ``decode_row``); both import this module, neither the other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from marketdata.quotes import Quote

TICKS_CHANNEL = "marketdata:ticks"  # Redis pub/sub channel prefix: one message per batch (see encode_batch)


def ticks_channel(redis_url: str | None = None) -> str:
    """Return the pub/sub channel of tick batches for the Redis database at ``redis_url`` (REDIS_URL).

    Redis pub/sub is one namespace for the whole server, whatever the database number, so the number
    is part of the name: terminals sharing a server on different databases (a test run beside a dev
    server, two environments) do not hear each other's ticks.
    """
    from redis.connection import parse_url

    return f"{TICKS_CHANNEL}:{parse_url(redis_url or settings.REDIS_URL).get('db', 0)}"


def _text(value) -> str | None:
    return None if value is None else str(value)


def encode_batch(batch: list[Quote]) -> str:
    """The fan-out message: per quote only what the websocket updates show (no depth), as
    ``[instrument_id, ltp, bid, ask, volume, oi, close, ts_epoch_ms]``, so every web process can read
    thousands a second; the full quote is in the Redis hash."""
    rows = [
        [q.instrument_id, str(q.ltp), _text(q.bid), _text(q.ask), q.volume, q.oi, _text(q.close), q.ts.timestamp()]
        for q in batch
    ]
    return json.dumps(rows, separators=(",", ":"))


def decode_row(row: list) -> Quote:
    """Turn one row of a fan-out message into a Quote (without depth); raise ValueError/TypeError/IndexError
    on a malformed one."""
    instrument_id, ltp, bid, ask, volume, oi, close, ts = row
    return Quote(
        instrument_id=int(instrument_id),
        ltp=Decimal(ltp),
        bid=None if bid is None else Decimal(bid),
        ask=None if ask is None else Decimal(ask),
        volume=int(volume),
        oi=int(oi),
        close=None if close is None else Decimal(close),
        ts=datetime.fromtimestamp(float(ts), tz=UTC),
    )


def decode_batch(payload: bytes | str) -> list[list]:
    """Parse one fan-out message into rows keyed by their first item; raise ValueError when malformed."""
    rows = json.loads(payload)
    if not isinstance(rows, list) or not all(isinstance(row, list) and len(row) == 8 for row in rows):
        raise ValueError("a tick batch is a JSON list of 8-item rows")
    return rows
