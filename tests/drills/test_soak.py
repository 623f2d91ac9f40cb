"""The soak (bench/soak.py) at a reduced size: one minute of a trading day under load, then its checks.

It runs as a subprocess with its own throwaway database (test_<name>_soak_soak), as
tests/kite/test_bench_orders.py runs bench/orders.py, and this test asserts on the verdict lines it
prints (its figures are printed, and kept in var/drills/soak.txt; no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(600)]

# What two shared cores carry beside the rest of a CI run: 20 accounts (5 users, each 2 paper and 2 Kite),
# 150 websocket clients (300 sockets), 4 tick-driven deployments, two web workers, for one minute.
SIZE = ["--minutes", "1", "--accounts", "20", "--ws-clients", "150", "--deployments", "4", "--feed-rate", "100"]
SIZE += ["--workers", "2", "--connections", "16", "--capacity-seconds", "3", "--sample-seconds", "2"]
VERDICTS = ("orders", "positions", "margin", "audit", "websockets", "memory", "connections")


def test_a_minute_of_a_trading_day_under_load_loses_no_order_and_shows_the_trader_the_truth():
    url = urlsplit(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": urlunsplit(url._replace(path=f"{url.path}_soak"))}
    run = subprocess.run(
        [sys.executable, "bench/soak.py", *SIZE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=560
    )
    out = run.stdout
    print(out, flush=True)
    assert re.search(r"^size: reduced: 1 min, 20 accounts", out, re.M), out + run.stderr[-3000:]
    ledger = re.search(r"^soak: orders sent (\d+), acknowledged (\d+), .* duplicated (\d+), lost (\d+)", out, re.M)
    assert ledger and int(ledger[2]) > 0 and ledger[3] == ledger[4] == "0", out
    for name in VERDICTS:
        assert re.search(rf"^verdict {name}: ok", out, re.M), f"verdict {name} failed:\n{out}"
    sockets = r"^websockets: 150 of 150 clients connected, 0 dropped, \d+ handshakes retried; tick messages [1-9]"
    assert re.search(sockets, out, re.M), out
    assert run.returncode == 0 and re.search(r"^soak: ok$", out, re.M), out + run.stderr[-3000:]
