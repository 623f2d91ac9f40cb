"""Importing a broker's 1-minute history into the candle table (``manage.py import_candles``), and
filling a live feed's gaps from it (``history_fill_gaps``).

The range is read in chunks no longer than the broker's limit per request (its
``capabilities.history_days``), oldest first; each chunk's bars are written in one transaction after
the whole chunk has arrived, so a failed request leaves nothing of its chunk and the chunks before it
stored. Re-running the same import resumes from the latest bar already stored in the range (that
minute is read again: the upsert is idempotent). Requests count against the broker's rate limit
(its client waits for room); a refusal for the rate (429) is retried after a pause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from audit.services import audit_record
from brokers.adapters.base import BrokerRateLimited, no_history
from brokers.adapters.registry import adapter_for, family
from core.errors import ApplicationError
from marketdata.candles import Bar
from marketdata.gaps import duplicates_of
from marketdata.selectors import candle_latest_ts, candle_newest_between
from marketdata.services import candle_import_batch

logger = logging.getLogger(__name__)

STORED_INTERVAL = "minute"  # only 1-minute bars are stored; other timeframes are derived by query
RATE_RETRIES = 3
RATE_PAUSE = 2.0  # seconds before retrying a request the broker refused for its rate


class HistoryRangeInvalid(ApplicationError):
    code = "history_range_invalid"
    status = 400


@dataclass
class HistoryImport:
    """What an import did: the range it read (after resuming), its chunks, the bars the broker gave
    and wrote, and the timestamps the broker gave more than once."""

    start: datetime
    end: datetime
    chunks: int = 0
    written: int = 0
    resumed: bool = False
    duplicates: dict[datetime, int] = field(default_factory=dict)


def history_chunks(*, start: datetime, end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive spans of at most ``days`` days, oldest first."""
    if days < 1:
        raise ValueError("days must be at least 1")
    chunks, low = [], start
    while low < end:
        high = min(low + timedelta(days=days), end)
        chunks.append((low, high))
        low = high
    return chunks


def history_import(
    *,
    account: Any,
    instrument_id: int,
    start: datetime,
    end: datetime,
    interval: str = STORED_INTERVAL,
    resume: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HistoryImport:
    """Read ``account``'s broker history of ``instrument_id`` for ``start <= ts < end`` (aware) and store it.

    ``on_start(chunks)`` is called once with the number of chunks, ``on_chunk(index, bars)`` after each
    chunk is stored. Returns the ``HistoryImport``. Raises HistoryRangeInvalid for a reversed or naive
    range or an interval other than ``minute``; BrokerRejected ``broker_no_history`` when the broker
    serves no such history (the paper exchange); the broker's errors as they come (the chunks already
    stored stay, and a re-run resumes after them)."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise HistoryRangeInvalid("The range must run forwards between two aware times.")
    if interval != STORED_INTERVAL:
        raise HistoryRangeInvalid(
            f"Only {STORED_INTERVAL} bars are stored; longer timeframes are derived from them.",
            extra={"interval": interval},
        )
    days = family(account.broker).capabilities.history_days(interval)
    if days is None:
        raise no_history(family(account.broker), interval)
    result = HistoryImport(start=start, end=end)
    if resume:
        latest = candle_latest_ts(instrument_id=instrument_id, start=start, end=end)
        if latest is not None:
            result.start, result.resumed = latest, True
    adapter = adapter_for(account)
    chunks = history_chunks(start=result.start, end=end, days=days)
    if on_start is not None:
        on_start(len(chunks))
    seen: list[datetime] = []
    for index, (low, high) in enumerate(chunks):
        for attempt in range(RATE_RETRIES + 1):
            try:
                candles = adapter.historical_candles(
                    instrument_id=instrument_id, interval=interval, start=low, end=high
                )
                break
            except BrokerRateLimited:
                if attempt == RATE_RETRIES:
                    raise
                logger.info("history import rate-limited; retrying", extra={"account_id": account.pk})
                sleep(RATE_PAUSE * (attempt + 1))
        bars = [Bar(instrument_id, c.ts, c.open, c.high, c.low, c.close, c.volume, c.oi) for c in candles]
        seen.extend(bar.ts for bar in bars)
        result.written += candle_import_batch(bars=bars)
        result.chunks += 1
        if on_chunk is not None:
            on_chunk(index, len(bars))
    result.duplicates = duplicates_of(seen)
    audit_record(
        actor="system:import_candles",
        action="candles.imported",
        target=account,
        payload={
            "instrument_id": instrument_id,
            "start": result.start.isoformat(),
            "end": end.isoformat(),
            "chunks": result.chunks,
            "written": result.written,
            "source": "broker",
        },
    )
    return result


@dataclass
class GapFill:
    """What a gap fill did: per instrument filled, the newest bar it continued from (``since``) and the
    bars the broker gave for the missed minutes (``written``); ``failed``: the broker's error per
    instrument it could not read."""

    end: datetime
    since: dict[int, datetime] = field(default_factory=dict)
    written: dict[int, int] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def minutes(self) -> int:
        return sum(self.written.values())


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def history_fill_gaps(
    *,
    account: Any,
    instrument_ids: Iterable[int],
    end: datetime,
    lookback_minutes: int,
    newest: Mapping[int, datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> GapFill:
    """Fill the 1-minute bars a live feed missed (its connection was down, or its process) from
    ``account``'s broker history; return the ``GapFill``.

    For each instrument the gap runs from the minute after its newest bar before ``end``'s minute (the
    newest stored, or in ``newest``: a bar the feed is building and has not stored yet) up to ``end``'s
    minute, exclusive (the minute in progress is the live feed's, whose ticks came back with the
    connection). Bars already stored are never replaced (but a bar of the minute the connection was lost
    in that the feed had not stored yet is stored by the feed after the broker's), and a minute
    the broker has no bar for (nothing traded) stays empty. An instrument with no bar in the
    ``lookback_minutes`` before ``end`` has no series to continue and is left alone (importing history
    is ``history_import``'s work). A request refused for the rate is retried as ``history_import``
    does; any other broker error is recorded in ``failed`` and the other instruments go on."""
    end = _minute(end)
    window = end - timedelta(minutes=lookback_minutes)
    ids = list(dict.fromkeys(instrument_ids))
    last = candle_newest_between(instrument_ids=ids, start=window, end=end)
    wanted = set(ids)
    for pk, ts in (newest or {}).items():
        ts = _minute(ts)
        if pk in wanted and window <= ts < end:  # a bar of the minute in progress came after the gap
            last[pk] = max(last.get(pk, ts), ts)
    result = GapFill(end=end)
    adapter = None
    for instrument_id in ids:
        since = last.get(instrument_id)
        if since is None or since < window or since + timedelta(minutes=1) >= end:
            continue
        adapter = adapter or adapter_for(account)
        result.since[instrument_id] = since
        try:
            for attempt in range(RATE_RETRIES + 1):
                try:
                    candles = adapter.historical_candles(
                        instrument_id=instrument_id,
                        interval=STORED_INTERVAL,
                        start=since + timedelta(minutes=1),
                        end=end,
                    )
                    break
                except BrokerRateLimited:
                    if attempt == RATE_RETRIES:
                        raise
                    sleep(RATE_PAUSE * (attempt + 1))
        except Exception as error:  # one instrument's failure does not stop the others'
            result.failed[instrument_id] = str(error)[:200]
            logger.warning("gap fill of instrument %s failed: %s", instrument_id, error)
            continue
        bars = [
            Bar(instrument_id, c.ts, c.open, c.high, c.low, c.close, c.volume, c.oi) for c in candles if c.ts > since
        ]
        result.written[instrument_id] = candle_import_batch(bars=bars)
    if result.since:
        audit_record(
            actor="system:gap_fill",
            action="candles.gap_filled",
            target=account,
            payload={
                "end": end.isoformat(),
                "instruments": len(result.since),
                "written": result.minutes,
                "failed": len(result.failed),
                "source": "broker",
            },
        )
    return result
