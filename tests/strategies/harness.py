"""What the strategy tests share: an in-memory symbol master, 1-minute bars read from CSV fixtures, and a
replay that fills each market intent at the close of the bar that produced it."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from marketdata.hours import IST
from strategies.contract import Bar, Fill, Intent, OptionRow
from strategies.engine import StrategyRun

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class MemoryInstruments:
    """The ``Instruments`` protocol over plain dicts (the symbol master without a database)."""

    symbols: dict[tuple[str, str], int] = field(default_factory=dict)
    lots: dict[int, int] = field(default_factory=dict)
    chains: dict[str, list[OptionRow]] = field(default_factory=dict)

    def lookup(self, exchange: str, symbol: str) -> int | None:
        return self.symbols.get((exchange, symbol))

    def lot_size(self, instrument_id: int) -> int:
        return self.lots.get(instrument_id, 1)

    def options(self, underlying: str, *, on: date) -> Sequence[OptionRow]:
        rows = [row for row in self.chains.get(underlying, []) if row.expiry >= on]
        if not rows:
            return []
        nearest = min(row.expiry for row in rows)
        return [row for row in rows if row.expiry == nearest]


def ist(day: date, hhmm: str) -> datetime:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST)


def load_bars(name: str, instruments: dict[str, int]) -> list[Bar]:
    """1-minute bars from ``fixtures/<name>`` (columns: time in IST ``YYYY-MM-DD HH:MM``, symbol, open,
    high, low, close, volume), ``symbol`` mapped to an instrument id; ordered by time then instrument."""
    bars = []
    with (FIXTURES / name).open(newline="") as handle:
        for row in csv.DictReader(handle):
            ts = datetime.strptime(row["time"], "%Y-%m-%d %H:%M").replace(tzinfo=IST)
            bars.append(
                Bar(
                    instrument_id=instruments[row["symbol"]],
                    ts=ts,
                    open=Decimal(row["open"]),
                    high=Decimal(row["high"]),
                    low=Decimal(row["low"]),
                    close=Decimal(row["close"]),
                    volume=int(row["volume"]),
                )
            )
    return sorted(bars, key=lambda bar: (bar.ts, bar.instrument_id))


@dataclass(frozen=True)
class Trade:
    time: str  # HH:MM IST: the minute the fill's bar closed
    leg: str
    side: str
    quantity: int
    price: Decimal


def replay(run: StrategyRun, bars: Iterable[Bar]) -> list[Trade]:
    """Feeds ``bars`` (1-minute, oldest first) to ``run`` and fills every market intent at once, at the close
    of the 1-minute bar of the intent's instrument for the minute that produced it (the latest close when
    that instrument has no bar that minute), then hands the fill back. Returns the trades in order."""
    last: dict[int, Bar] = {}
    trades: list[Trade] = []
    by_minute: dict[datetime, list[Bar]] = {}
    for bar in bars:
        by_minute.setdefault(bar.ts, []).append(bar)
    for minute in sorted(by_minute):
        for bar in by_minute[minute]:
            last[bar.instrument_id] = bar
        for bar in by_minute[minute]:
            pending: list[Intent] = list(run.on_bar(bar).intents)
            while pending:
                intent = pending.pop(0)
                assert intent.order_type == "MARKET", intent
                fill_bar = last[intent.instrument_id]
                closed = fill_bar.ts + timedelta(minutes=1)
                trades.append(
                    Trade(
                        closed.astimezone(IST).strftime("%H:%M"),
                        intent.leg,
                        intent.side,
                        intent.quantity,
                        fill_bar.close,
                    )
                )
                fill = Fill(
                    leg=intent.leg,
                    instrument_id=intent.instrument_id,
                    side=intent.side,
                    quantity=intent.quantity,
                    price=fill_bar.close,
                    ts=closed,
                )
                pending.extend(run.on_fill(fill).intents)
    return trades
