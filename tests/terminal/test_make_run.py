"""`make run` on a machine with no services: the terminal answers within 60 seconds."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.slow
def test_make_run_serves_health_and_the_login_page_without_postgres_or_redis(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "MAKEFLAGS"}}
    env.update(PORT=str(port), VAR_DIR=str(tmp_path / "var"))
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        ["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = _get(f"http://127.0.0.1:{port}/api/health")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert process.poll() is None, (tmp_path / "run.log").read_text()
                time.sleep(0.5)
        assert health is not None, "no answer within 60 s:\n" + (tmp_path / "run.log").read_text()
        assert health[0] == 200, health[1]
        status, page = _get(f"http://127.0.0.1:{port}/login/")
        assert status == 200 and 'name="password"' in page
        output = (tmp_path / "run.log").read_text()
        assert "Demo login:" in output and "password:" in output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("missing", ["npm", "node"])
def test_make_run_without_node_or_npm_stops_with_one_line_saying_both_are_needed(tmp_path, missing):
    # A PATH with bash and only one of the two: the check runs before anything in static/vendor/ changes.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in {"bash", "npm", "node"} - {missing}:
        (bin_dir / tool).symlink_to("/bin/bash" if tool == "bash" else "/bin/false")
    before = sorted((ROOT / "static" / "vendor").rglob("*")) if (ROOT / "static" / "vendor").exists() else []
    result = subprocess.run(
        ["/usr/bin/make", "--always-make", "static/vendor/VERSIONS"],
        cwd=ROOT,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
    assert len(ours) == 1 and "Node.js and npm are needed" in ours[0] and "apt-get install nodejs npm" in ours[0]
    after = sorted((ROOT / "static" / "vendor").rglob("*")) if (ROOT / "static" / "vendor").exists() else []
    assert after == before
