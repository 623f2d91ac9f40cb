"""bench/orders.py --broker kite runs end to end: a served terminal trading Kite accounts against the
local Kite server, briefly and with few clients (its numbers are not checked here, only that every
measurement ran and reported)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_the_kite_benchmark_measures_kite_against_paper_and_the_terminals_overhead():
    url = urlsplit(os.environ["DATABASE_URL"])
    # Its own throwaway database (test_<name>_benchsmoke), never this run's test database.
    env = {**os.environ, "DATABASE_URL": urlunsplit(url._replace(path=f"{url.path}_benchsmoke"))}
    command = [sys.executable, "bench/orders.py", "--broker", "kite", "--clients", "2", "--overhead-clients", "1"]
    command += ["--seconds", "1", "--accounts-per-client", "8", "--client-processes", "1", "--workers", "1"]
    command += ["--broker-latency", "0.05"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert re.search(r"paper POST /api/v1/orders, 2 clients: +[\d.]+ req/s .*\(\d+ requests, 0 errors", out), out
    assert re.search(r"kite  POST /api/v1/orders, 2 clients: +[\d.]+ req/s .*\(\d+ requests, 0 errors", out), out
    assert re.search(r"kite  POST /api/v1/orders, 1 clients: +[\d.]+ req/s .*\(\d+ requests, 0 errors", out), out
    assert re.search(r"kite orders/s as a ratio of paper orders/s at 2 clients: [\d.]+", out), out
    assert re.search(r"terminal overhead at 1 clients .* p50 -?[\d.]+ ms .* p99 -?[\d.]+ ms", out), out
    assert re.search(r"Kite orders by status: OPEN \d+; refused by the rate limiter: 0", out), out
