"""``manage.py run_feed`` as its own process: metrics on its port, clean exit on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_simulated_feed_exports_metrics_and_stops_cleanly_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env["VAR_DIR"] = str(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "load_instruments", "--sample", "--no-progress"], cwd=ROOT, env=env, check=True)
    port = _free_port()
    feed = subprocess.Popen(
        [*manage, "run_feed", "--source", "sim", "--seed", "7", "--rate", "1000", "--metrics-port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ingested = 0.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ingested < 1000:
            time.sleep(0.5)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                continue
            for line in body.splitlines():
                if line.startswith("terminal_ticks_ingested_total"):
                    ingested = float(line.split()[1])
        assert ingested >= 1000
        assert "terminal_feed_lag_seconds" in body
    finally:
        feed.send_signal(signal.SIGTERM)
        output, _ = feed.communicate(timeout=20)
    assert feed.returncode == 0, output
    assert "feed sim stopped after" in output
