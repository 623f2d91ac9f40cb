"""Replay recorded market data from CSV at a speed factor.

Two layouts, told apart by the header:
- ticks: ``ts, instrument, ltp`` and optionally ``volume, oi, bid, ask`` (volume cumulative);
- candles: ``ts, instrument, open, high, low, close`` and optionally ``volume, oi``; each candle
  becomes four ticks (open, then the nearer extreme, the other extreme, close) a quarter of its
  period apart, volume spread evenly.

``instrument`` is ``EXCHANGE:TRADINGSYMBOL`` or an instrument id; ``ts`` is ISO 8601 (a naive time is
IST, as exchange files are). Timestamps are shifted so the first row plays "now" unless
``keep_timestamps`` is set (to backfill candles). ``speed`` 10 plays ten times faster than recorded;
0 plays as fast as possible.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from marketdata.errors import MarketDataError
from marketdata.feeds.base import QuoteCallback, ThreadedFeed
from marketdata.models import Instrument
from marketdata.quotes import Quote

IST = ZoneInfo("Asia/Kolkata")
TICK_COLUMNS = {"ts", "instrument", "ltp"}
CANDLE_COLUMNS = {"ts", "instrument", "open", "high", "low", "close"}


class InvalidReplayFile(MarketDataError):
    code = "invalid_replay_file"


@dataclass(frozen=True)
class ReplayRow:
    ts: datetime
    instrument_id: int
    ltp: Decimal
    volume: int = 0
    oi: int = 0
    bid: Decimal | None = None
    ask: Decimal | None = None


def _parse_ts(text: str, line: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidReplayFile(f"line {line}: ts {text!r} is not an ISO 8601 time", extra={"line": line}) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=IST)).astimezone(UTC)


def _decimal(record: dict[str, str], column: str, line: int) -> Decimal | None:
    text = (record.get(column) or "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidReplayFile(f"line {line}: {column} {text!r} is not a number", extra={"line": line}) from None
    if not value.is_finite() or value <= 0:
        raise InvalidReplayFile(f"line {line}: {column} {text!r} must be positive", extra={"line": line})
    return value


def _int(record: dict[str, str], column: str, line: int) -> int:
    text = (record.get(column) or "").strip()
    if not text:
        return 0
    try:
        return int(Decimal(text))
    except (InvalidOperation, ValueError):
        raise InvalidReplayFile(f"line {line}: {column} {text!r} is not a number", extra={"line": line}) from None


def read_replay(path: Path, resolve: dict[str, int]) -> list[ReplayRow]:
    """Return the file's rows as ticks in time order. ``resolve`` maps ``EXCHANGE:SYMBOL`` and id
    strings to instrument ids. Raises InvalidReplayFile naming the first bad line."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        if columns >= CANDLE_COLUMNS:
            candles = True
        elif columns >= TICK_COLUMNS:
            candles = False
        else:
            raise InvalidReplayFile(
                "the header must have ts, instrument, ltp (ticks) or ts, instrument, open, high, low, close (candles)"
            )
        records = [(reader.line_num, record) for record in reader]
    rows: list[ReplayRow] = []
    period = _candle_period(records) if candles else timedelta(0)
    for line, record in records:
        ref = (record.get("instrument") or "").strip()
        if ref not in resolve:
            raise InvalidReplayFile(f"line {line}: unknown instrument {ref!r}", extra={"line": line})
        ts = _parse_ts(record.get("ts") or "", line)
        instrument_id = resolve[ref]
        if not candles:
            ltp = _decimal(record, "ltp", line)
            if ltp is None:
                raise InvalidReplayFile(f"line {line}: ltp is required", extra={"line": line})
            rows.append(
                ReplayRow(
                    ts,
                    instrument_id,
                    ltp,
                    _int(record, "volume", line),
                    _int(record, "oi", line),
                    _decimal(record, "bid", line),
                    _decimal(record, "ask", line),
                )
            )
            continue
        prices = [_decimal(record, column, line) for column in ("open", "high", "low", "close")]
        if any(price is None for price in prices):
            raise InvalidReplayFile(f"line {line}: open, high, low and close are required", extra={"line": line})
        open_, high, low, close = prices  # type: ignore[misc]
        path_ = (open_, low, high, close) if close >= open_ else (open_, high, low, close)
        volume, oi = _int(record, "volume", line), _int(record, "oi", line)
        for step, price in enumerate(path_):
            share = volume * (step + 1) // 4 - volume * step // 4  # the bar's volume over its four ticks
            rows.append(ReplayRow(ts + period * step / 4, instrument_id, price, share, oi))
    rows.sort(key=lambda row: row.ts)
    if candles:
        rows = _cumulate_volume(rows)
    return rows


def _candle_period(records: list[tuple[int, dict[str, str]]]) -> timedelta:
    """The smallest gap between two candles of one instrument (a minute when it cannot be told)."""
    last: dict[str, datetime] = {}
    gaps = []
    for line, record in records:
        ref, ts = record.get("instrument", ""), _parse_ts(record.get("ts") or "", line)
        if ref in last and ts > last[ref]:
            gaps.append(ts - last[ref])
        last[ref] = ts
    return min(gaps) if gaps else timedelta(minutes=1)


def _cumulate_volume(rows: list[ReplayRow]) -> list[ReplayRow]:
    """Candle rows carry their share of a bar's volume; quotes carry the cumulative volume."""
    total: dict[int, int] = {}
    result = []
    for row in rows:
        total[row.instrument_id] = total.get(row.instrument_id, 0) + row.volume
        result.append(ReplayRow(row.ts, row.instrument_id, row.ltp, total[row.instrument_id], row.oi, row.bid, row.ask))
    return result


def _batches(rows: list[ReplayRow]) -> Iterator[list[ReplayRow]]:
    batch: list[ReplayRow] = []
    for row in rows:
        if batch and row.ts != batch[0].ts:
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


class ReplayFeed(ThreadedFeed):
    """Plays a recorded file once, then stops (``is_alive`` turns false)."""

    name = "replay"

    def __init__(
        self, *, on_quotes: QuoteCallback, path: Path, speed: float = 1.0, keep_timestamps: bool = False
    ) -> None:
        super().__init__(on_quotes=on_quotes)
        self.path = path
        self.speed = speed
        self.keep_timestamps = keep_timestamps
        self.rows: list[ReplayRow] = []

    def subscribe(self, instruments: Sequence[Instrument]) -> None:
        resolve = {f"{i.exchange}:{i.tradingsymbol}": i.pk for i in instruments}
        resolve.update({str(i.pk): i.pk for i in instruments})
        self.rows = read_replay(self.path, resolve)

    def run(self, stop: threading.Event) -> None:
        if not self.rows:
            return
        first = self.rows[0].ts
        shift = timedelta(0) if self.keep_timestamps else datetime.now(UTC) - first
        started = time.monotonic()
        opens: dict[int, Decimal] = {}
        for batch in _batches(self.rows):
            if self.speed > 0:
                due = started + (batch[0].ts - first).total_seconds() / self.speed
                if stop.wait(max(due - time.monotonic(), 0.0)):
                    return
            elif stop.is_set():
                return
            quotes = []
            for row in batch:
                opens.setdefault(row.instrument_id, row.ltp)
                quotes.append(
                    Quote(
                        instrument_id=row.instrument_id,
                        ltp=row.ltp,
                        ts=row.ts + shift,
                        bid=row.bid,
                        ask=row.ask,
                        volume=row.volume,
                        oi=row.oi,
                        open=opens[row.instrument_id],
                    )
                )
            self.on_quotes(quotes)
