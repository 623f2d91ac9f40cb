"""bench/backtest.py runs end to end, small: the engine's bars/s, the comparison with backtesting.py (or how
to install it), the sweep's time against its target (its numbers are not checked, only that each ran)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]


def test_the_backtest_benchmark_measures_bars_per_second_compares_and_sweeps():
    command = [sys.executable, "bench/backtest.py", "--days", "3", "--instruments", "2", "--processes", "1"]
    run = subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"one instrument: 1,125 1-minute bars over 3 days", out), out
    assert re.search(r"this engine: [\d.]+ s, [\d,]+ bars/s, \d+ closed trades", out), out
    assert re.search(r"same trades: \d+ closed trades|trades differ|not installed; install it with", out), out
    assert re.search(r"2,250 bars in [\d.]+ s wall .*time / target 60 s", out), out


NEAR_HALF_TICKS = st.integers(min_value=1, max_value=200_000).flatmap(
    lambda n: st.sampled_from([n + 0.5, n + 0.4999999, n + 0.5000001]).map(lambda ticks: ticks / 20)
)


@given(value=st.floats(min_value=0.01, max_value=10_000) | NEAR_HALF_TICKS)
def test_the_benchs_bar_prices_in_floats_are_the_exact_decimal_rounding(value):
    from bench.backtest import TICK, _tick, _ticks

    assert _ticks(value) * TICK == _tick(value)
