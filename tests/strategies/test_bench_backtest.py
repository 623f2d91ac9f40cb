"""bench/backtest.py runs end to end, small: the engine's bars/s, the comparison with backtesting.py (or how
to install it), the sweep's time against its target (its numbers are not checked, only that each ran)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
