"""bench/strategies.py runs end to end, small: bar closes on real Celery workers and a tick runner fed
ticks (its numbers are not checked here, only that every measurement ran and reported)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_the_strategies_benchmark_measures_bar_close_lag_orders_per_second_and_tick_lag():
    command = [sys.executable, "bench/strategies.py", "--bar-deployments", "6", "--tick-deployments", "3"]
    command += ["--tick-rate", "200", "--seconds", "2", "--bars", "2", "--workers", "1", "--concurrency", "2"]
    run = subprocess.run(command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    lag = r"evaluation lag p50 +[\d.]+ ms  p99 +[\d.]+ ms  \(p99 / target 1 s: [\d.]+\); "
    lag += r"6 orders in [\d.]+ s: [\d.]+ orders/s"
    assert re.search(rf"bar 1 \(runs rebuilt by warm-up\): {lag}", out), out
    assert re.search(rf"bar 2: {lag}", out), out
    assert re.search(r"one runner holding 9 deployments", out), out
    assert re.search(r"batch lag from its newest tick p50 +[\d.]+ ms  p99 +[\d.]+ ms  \(p99 / target 250 ms", out), out
