"""In production the application refuses, at start-up, a REDIS_URL that carries no password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.served import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parents[2]


def _check(tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **PRODUCTION_ENV, "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("url", ["redis://redis:6379/0", "rediss://user@redis:6379/0", "redis://10.0.0.5:6379/1"])
def test_a_redis_url_without_a_password_stops_production_with_one_line(tmp_path, url):
    result = _check(tmp_path, REDIS_URL=url)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: REDIS_URL="), result.stderr
    assert "password" in lines[0] and "Traceback" not in result.stderr


def test_the_opt_out_holds_only_for_a_local_socket(tmp_path):
    remote = _check(tmp_path, REDIS_URL="redis://redis:6379/0", REDIS_ALLOW_NO_PASSWORD="true")
    assert remote.returncode != 0 and "REDIS_URL" in remote.stderr
    for url in ("unix:///run/redis/redis.sock?db=0", "redis://127.0.0.1:6379/0"):
        local = _check(tmp_path, REDIS_URL=url, REDIS_ALLOW_NO_PASSWORD="true")
        assert "REDIS_URL" not in local.stderr, local.stderr


@pytest.mark.parametrize(
    "url", ["redis://:s3cret@redis:6379/0", "rediss://app:s3cret@redis:6379/0?ssl_cert_reqs=required"]
)
def test_a_redis_url_with_a_password_is_accepted_and_never_echoed(tmp_path, url):
    result = _check(tmp_path, REDIS_URL=url)
    assert "REDIS_URL" not in result.stderr and "s3cret" not in result.stderr + result.stdout
