import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.env import EnvError, env_bool, env_database, env_int, env_redis_url

ROOT = Path(__file__).resolve().parents[2]


def test_it_parses_booleans_in_their_usual_spellings():
    assert env_bool("X", False, environ={"X": "yes"}) is True
    assert env_bool("X", True, environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True


def test_it_rejects_a_boolean_it_cannot_read():
    with pytest.raises(EnvError, match=r"DEBUG='maybe' is invalid: expected a boolean"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})


def test_it_rejects_integers_out_of_range_or_not_numbers():
    assert env_int("N", 1, minimum=0, environ={"N": "5"}) == 5
    with pytest.raises(EnvError, match="an integer between 0 and inf"):
        env_int("N", 1, minimum=0, environ={"N": "-1"})
    with pytest.raises(EnvError, match="N='five'"):
        env_int("N", 1, environ={"N": "five"})


@pytest.mark.parametrize("url", ["foo", "postgres://host:abc/db", "mysql://host/db", "postgres://host:5432/"])
def test_it_rejects_a_database_url_it_cannot_use(url):
    with pytest.raises(EnvError, match="DATABASE_URL"):
        env_database("DATABASE_URL", "sqlite:///x.db", environ={"DATABASE_URL": url})


def test_it_reads_a_postgres_url():
    config = env_database("DATABASE_URL", "", environ={"DATABASE_URL": "postgres://u:p@db:6543/trading"})
    assert (config["ENGINE"], config["HOST"], config["PORT"], config["NAME"]) == (
        "django.db.backends.postgresql",
        "db",
        6543,
        "trading",
    )


@pytest.mark.parametrize("url", ["redis://cache:notaport/0", "http://cache:6379", "redis://"])
def test_it_rejects_a_redis_url_it_cannot_use(url):
    with pytest.raises(EnvError, match="REDIS_URL"):
        env_redis_url("REDIS_URL", environ={"REDIS_URL": url})


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_ENV"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DATABASE_URL", "foo", "expected a database URL"),
        ("DATABASE_URL", "postgres://db:port/x", "expected a database URL"),
        ("REDIS_URL", "redis://cache:abc/0", "expected a Redis URL"),
        ("DEBUG", "maybe", "expected a boolean"),
        ("DJANGO_ENV", "staging-ish", "expected one of development, production, test"),
        ("WEB_THREADS", "0", "expected an integer between 1 and 64"),
    ],
)
def test_a_bad_variable_stops_start_up_with_one_line_and_no_traceback(name, value, expected, tmp_path):
    result = _manage("check", VAR_DIR=str(tmp_path), **{name: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {name}=") and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_production_requires_a_secret_key(tmp_path):
    result = _manage("check", VAR_DIR=str(tmp_path), DJANGO_ENV="production", ALLOWED_HOSTS="example.com")
    assert result.returncode == 2
    assert "SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


def test_production_requires_broker_encryption_keys(tmp_path):
    result = _manage(
        "check", VAR_DIR=str(tmp_path), DJANGO_ENV="production", ALLOWED_HOSTS="example.com", SECRET_KEY="s" * 60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: BROKER_ENCRYPTION_KEYS=") and "Traceback" not in result.stderr


def test_the_production_profile_passes_the_deployment_checklist(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        VAR_DIR=str(tmp_path),
        DJANGO_ENV="production",
        SECRET_KEY="x7" * 30 + "-production-secret",
        AUDIT_SIGNING_KEY=base64.b64encode(os.urandom(32)).decode(),
        AUDIT_HMAC_KEYS="a1:" + base64.b64encode(os.urandom(32)).decode(),
        ALLOWED_HOSTS="terminal.example.com",
        BROKER_ENCRYPTION_KEYS="k1:" + "A" * 43,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_standalone_mode_keeps_a_generated_secret_key_under_var(tmp_path):
    show = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = _manage("shell", "-c", show, VAR_DIR=str(tmp_path))
    second = _manage("shell", "-c", show, VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
