"""The backtest engine: a year of 1-minute bars through the EMA crossover, against backtesting.py, and a sweep.

    python bench/backtest.py [--days 250] [--instruments 50] [--processes 2] [--fast 9] [--slow 21]
        [--no-compare] [--repeat 1]

Needs no database: the bars come from a seeded generator (a random walk of 375 minutes a day, 09:15-15:29
IST, on weekdays from 1 Jan 2025; 250 days are 93,750 bars), the same for every run.
It measures:
- one instrument: the engine (``strategies.backtest.engine``, with the ``ema_crossover`` strategy on
  1-minute bars, long only, 10 shares in CNC, no charges, no slippage, market fills at the next bar's
  open), as bars per second;
- the same strategy on the same bars in backtesting.py (``trade_on_close=False``: market orders fill at
  the next bar's open too), its bars per second and the ratio of ours to it, and whether the two made the
  same trades (entry and exit times and prices); the differences, if any, are listed and explained.
  Each side's clock runs from its inputs made (our bars; its DataFrame and EMA arrays) to its result.
  backtesting.py is optional (``pip install -e '.[bench]'``, pinned in constraints.txt); without it the
  bench says so and measures the rest;
- a sweep: ``--instruments`` instruments (each its own seeded year) backtested in parallel by
  ``--processes`` worker processes, each run also making the report a sweep's run stores, the wall time
  against the 60 s target for 50 instruments, and how much of it was the engine, the reports and
  generating the bars (a sweep's task reads stored candles instead, which is not measured here).
Each time is given in wall seconds and in the process's CPU seconds: on a machine shared with other work
the wall time counts the time others had the CPU, the CPU time does not. ``--repeat`` times the
one-instrument runs several times, ours and theirs alternately, and reports the medians.
Results are numbers and ratios against the targets, not verdicts.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

SWEEP_TARGET_SECONDS = 60
SESSION_MINUTES = 375  # 09:15-15:29 IST
TICK = Decimal("0.05")
TICKS_PER_RUPEE = 20
QUANTITY = 10


def _setup() -> None:
    import django

    django.setup()


def trading_days(count: int, first: date = date(2025, 1, 1)) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def generate_bars(*, instrument_id: int, days: int, seed: int) -> list:
    """1-minute bars of a seeded random walk from 1000: each minute's open is the last close moved by a
    small gap, the close a step of about 0.05 %, high and low beyond both; prices on the 0.05 tick."""
    from strategies.contract import Bar

    rng = random.Random(seed)
    gauss = rng.gauss
    minutes = [timedelta(minutes=minute) for minute in range(SESSION_MINUTES)]
    prices: dict[int, Decimal] = {}  # ticks -> the price, each Decimal made once
    bars = []
    price = 1000.0
    for day in trading_days(days):
        # 09:15 IST is 03:45 UTC
        start = datetime(day.year, day.month, day.day, 3, 45, tzinfo=UTC)
        price *= 1 + gauss(0, 0.004)  # the overnight gap
        for offset in minutes:
            open_ = price * (1 + gauss(0, 0.0001))
            close = open_ * (1 + gauss(0, 0.0005))
            high = max(open_, close) * (1 + abs(gauss(0, 0.0002)))
            low = min(open_, close) * (1 - abs(gauss(0, 0.0002)))
            o, h, lo, c = _ticks(open_), _ticks(high), _ticks(low), _ticks(close)
            h, lo = max(h, o, c), min(lo, o, c)
            for n in (o, h, lo, c):
                if n not in prices:
                    prices[n] = n * TICK
            bars.append(Bar(instrument_id, start + offset, prices[o], prices[h], prices[lo], prices[c], 100))
            price = close
    return bars


def _tick(value: float) -> Decimal:
    """``value`` on the tick: its shortest decimal repr divided by the tick, rounded half to even."""
    return (Decimal(repr(value)) / TICK).quantize(Decimal(1)) * TICK


def _ticks(value: float) -> int:
    """``_tick(value)`` in ticks, computed in floats: a float's error in ``value * 20`` is far below 1e-6
    of a tick at these prices, so only a value that close to half a tick needs ``_tick``'s exact rounding."""
    scaled = value * TICKS_PER_RUPEE
    if abs(scaled - int(scaled) - 0.5) < 1e-6:
        return int(_tick(value) / TICK)
    return round(scaled)


def ema_params(symbol: str, fast: int, slow: int) -> dict:
    return {
        "instrument": {"exchange": "NSE", "symbol": symbol},
        "timeframe": 1,
        "fast": fast,
        "slow": slow,
        "quantity": QUANTITY,
        "mode": "long_only",
        "product": "CNC",
    }


def settings():
    from brokers.charges import ChargeSchedule
    from strategies.backtest.engine import BacktestSettings

    return BacktestSettings(fill_mode="next_open", charges=ChargeSchedule.none(), mis_square_off=None)


def ours(bars: list, *, instrument_id: int, symbol: str, fast: int, slow: int):
    from strategies.backtest.engine import InstrumentSpec, run_backtest

    spec = InstrumentSpec(instrument_id, "NSE", symbol)
    return run_backtest(
        kind="ema_crossover",
        params=ema_params(symbol, fast, slow),
        instruments=[spec],
        bars=bars,
        settings=settings(),
    )


def their_inputs(bars: list, *, fast: int, slow: int) -> tuple:
    """What backtesting.py is given, made before its clock starts (as our bars are made before ours): the
    bars as its DataFrame, and the EMAs as arrays. The EMAs are ours (``strategies.indicators.Ema``), so
    the comparison is of the engines, not of two EMA implementations' seeding."""
    import numpy as np
    import pandas as pd

    from strategies.indicators import Ema

    fast_ema, slow_ema = Ema(fast), Ema(slow)
    fast_values, slow_values = [], []
    for bar in bars:
        fast_ema.update(bar)
        slow_ema.update(bar)
        fast_values.append(float(fast_ema.value) if fast_ema.value is not None else np.nan)
        slow_values.append(float(slow_ema.value) if slow_ema.value is not None else np.nan)
    frame = pd.DataFrame(
        {
            "Open": [float(b.open) for b in bars],
            "High": [float(b.high) for b in bars],
            "Low": [float(b.low) for b in bars],
            "Close": [float(b.close) for b in bars],
            "Volume": [b.volume for b in bars],
        },
        index=pd.DatetimeIndex([b.ts for b in bars]),
    )
    return frame, np.array(fast_values), np.array(slow_values)


def theirs(frame, fast_array, slow_array):
    """backtesting.py over ``their_inputs``: the EMA crossover, long only, market orders at the next open."""
    import numpy as np
    from backtesting import Backtest, Strategy

    class EmaCross(Strategy):
        def init(self):
            self.fast = self.I(lambda: fast_array, name="fast")
            self.slow = self.I(lambda: slow_array, name="slow")

        def next(self):
            if len(self.fast) < 2:
                return
            f0, s0, f1, s1 = self.fast[-2], self.slow[-2], self.fast[-1], self.slow[-1]
            if np.isnan(f0) or np.isnan(s0):
                return
            if f0 <= s0 and f1 > s1 and not self.position:
                self.buy(size=QUANTITY)
            elif f0 >= s0 and f1 < s1 and self.position:
                self.position.close()

    test = Backtest(frame, EmaCross, cash=10**9, commission=0, trade_on_close=False, finalize_trades=False)
    return test.run()


def compare(result, stats) -> tuple[int, int, list[str]]:
    """(our closed trades, theirs, differences): a difference is a trade whose entry or exit time or price
    (to the paisa) is not the same on both sides."""
    mine = [
        (t.entry_ts, round(float(t.entry_price), 2), t.exit_ts, round(float(t.exit_price), 2)) for t in result.trades
    ]
    frame = stats["_trades"]
    other = [
        (
            row.EntryTime.to_pydatetime(),
            round(float(row.EntryPrice), 2),
            row.ExitTime.to_pydatetime(),
            round(float(row.ExitPrice), 2),
        )
        for row in frame.itertuples()
    ]
    differences = []
    for n, (a, b) in enumerate(zip(mine, other, strict=False)):
        if a != b:
            differences.append(f"trade {n + 1}: ours {a}, backtesting.py {b}")
    if len(mine) != len(other):
        differences.append(f"{len(mine)} closed trades here, {len(other)} in backtesting.py")
    return len(mine), len(other), differences


def _sweep_one(job: tuple[int, int, int, int]) -> tuple[int, int, float, float, float, float]:
    """One run of the sweep, as a sweep's task runs it but for the database: its bars, the engine, and the
    report it stores (``backtest_report``: metrics, monthly returns, the thinned equity curve).
    Returns (bars, closed trades, seconds generating the bars, the engine's wall seconds, its CPU seconds,
    the report's wall seconds)."""
    instrument_id, days, fast, slow = job
    _setup()
    from strategies.services.backtests import backtest_report

    started = time.perf_counter()
    bars = generate_bars(instrument_id=instrument_id, days=days, seed=instrument_id)
    generated = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    result = ours(bars, instrument_id=instrument_id, symbol=f"SYM{instrument_id}", fast=fast, slow=slow)
    engine, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    backtest_report(result)
    return len(bars), len(result.trades), generated, engine, engine_cpu, time.perf_counter() - started


def _timed(run):
    """(the result of ``run()``, its wall seconds, its CPU seconds)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - started, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250, help="trading days of 375 minutes (250: ~94,000 bars)")
    parser.add_argument("--instruments", type=int, default=50, help="instruments in the sweep")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="sweep worker processes")
    parser.add_argument("--fast", type=int, default=9)
    parser.add_argument("--slow", type=int, default=21)
    parser.add_argument("--no-compare", action="store_true", help="skip backtesting.py")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time the one-instrument runs this many times, alternating; report medians",
    )
    args = parser.parse_args(argv)
    _setup()
    try:
        import backtesting
    except ImportError:
        backtesting = None

    bars = generate_bars(instrument_id=1, days=args.days, seed=1)
    print(f"one instrument: {len(bars):,} 1-minute bars over {args.days} days, EMA {args.fast}/{args.slow} long only")
    compared = backtesting is not None and not args.no_compare
    inputs = their_inputs(bars, fast=args.fast, slow=args.slow) if compared else ()
    mine_times: list[tuple[float, float]] = []
    their_times: list[tuple[float, float]] = []
    for n in range(max(1, args.repeat)):
        result, wall, cpu = _timed(lambda: ours(bars, instrument_id=1, symbol="SYM1", fast=args.fast, slow=args.slow))
        mine_times.append((wall, cpu))
        if result.error:
            print(result.error)
            return 1
        if compared:
            stats, their_wall, their_cpu = _timed(lambda: theirs(*inputs))
            their_times.append((their_wall, their_cpu))
        if args.repeat > 1:
            line = f"  run {n + 1}: this engine {wall:.2f} s ({cpu:.2f} s CPU)"
            if compared:
                line += f", backtesting.py {their_wall:.2f} s ({their_cpu:.2f} s CPU)"
                line += f", ours / theirs {their_wall / wall:.2f}x ({their_cpu / cpu:.2f}x in CPU time)"
            print(line)
    elapsed, cpu = (statistics.median(t[i] for t in mine_times) for i in (0, 1))
    our_rate = len(bars) / elapsed
    median = f"median of {len(mine_times)} runs: " if len(mine_times) > 1 else ""
    print(
        f"  this engine: {elapsed:.2f} s, {our_rate:,.0f} bars/s, {len(result.trades)} closed trades "
        f"({median}{cpu:.2f} s CPU, {len(bars) / cpu:,.0f} bars/s)"
    )

    if args.no_compare:
        print("  backtesting.py: skipped (--no-compare)")
    elif backtesting is None:
        print("  backtesting.py: not installed; install it with `pip install -e '.[bench]'` (pinned in")
        print("  constraints.txt) to compare speed and trades")
    else:
        their_elapsed, their_cpu = (statistics.median(t[i] for t in their_times) for i in (0, 1))
        their_rate = len(bars) / their_elapsed
        print(
            f"  backtesting.py {backtesting.__version__}: {their_elapsed:.2f} s, {their_rate:,.0f} bars/s "
            f"(ours / theirs: {our_rate / their_rate:.2f}x; {median}{their_cpu:.2f} s CPU, "
            f"ours / theirs in CPU time: {their_cpu / cpu:.2f}x)"
        )
        mine, other, differences = compare(result, stats)
        if not differences:
            print(f"  same trades: {mine} closed trades, entry and exit times and prices identical")
        else:
            print(f"  trades differ ({mine} here, {other} there):")
            for line in differences[:10]:
                print(f"    {line}")
        if result.open_trades:
            print(
                "  (the position still open at the last bar is not a closed trade on either side: "
                "backtesting.py runs with finalize_trades=False)"
            )

    jobs = [(n, args.days, args.fast, args.slow) for n in range(1, args.instruments + 1)]
    print(f"sweep: {args.instruments} instruments x {len(bars):,} bars in {args.processes} processes")
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.processes) as pool:
        done = pool.map(_sweep_one, jobs)
    wall = time.perf_counter() - started
    total = sum(row[0] for row in done)
    generating = sum(row[2] for row in done)
    engine = sum(row[3] for row in done)
    engine_cpu = sum(row[4] for row in done)
    reporting = sum(row[5] for row in done)
    print(
        f"  {total:,} bars in {wall:.1f} s wall ({total / wall:,.0f} bars/s), {sum(row[1] for row in done)} trades; "
        f"time / target {SWEEP_TARGET_SECONDS} s (50 instruments, one year): {wall / SWEEP_TARGET_SECONDS:.2f}"
    )
    if done:
        print(
            f"  of which the engine: {engine:.1f} s summed over the processes ({total / engine:,.0f} bars/s each; "
            f"{engine_cpu:.1f} s CPU); the reports {reporting:.1f} s; generating the bars {generating:.1f} s; "
            "the rest is starting the processes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
