"""The checkpoint signing key comes from AUDIT_SIGNING_KEY, or is generated once outside production."""

import base64
import os
import subprocess
import sys

from django.conf import settings

SHOW_PUBLIC_KEY = (
    "from audit.checkpoints import signing_key; from core.ed25519 import public_key_text; "
    "print(public_key_text(signing_key().public_key()))"
)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    base.pop("AUDIT_SIGNING_KEY", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_requires_an_audit_signing_key(tmp_path):
    result = _manage(
        "check",
        VAR_DIR=str(tmp_path),
        DJANGO_ENV="production",
        SECRET_KEY="x7" * 30,
        ALLOWED_HOSTS="terminal.example.com",
        BROKER_ENCRYPTION_KEYS="k1:" + "A" * 43,
    )
    assert result.returncode == 2
    assert "error: AUDIT_SIGNING_KEY=" in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_audit_signing_key_stops_start_up_without_echoing_it(tmp_path):
    result = _manage("check", VAR_DIR=str(tmp_path), AUDIT_SIGNING_KEY="not-a-key")
    assert result.returncode == 2
    assert "AUDIT_SIGNING_KEY='<hidden>' is invalid" in result.stderr and "not-a-key" not in result.stderr


def test_a_base64_seed_is_accepted(tmp_path):
    seed = base64.b64encode(os.urandom(32)).decode()
    first = _manage("shell", "-c", SHOW_PUBLIC_KEY, VAR_DIR=str(tmp_path), AUDIT_SIGNING_KEY=seed)
    second = _manage("shell", "-c", SHOW_PUBLIC_KEY, VAR_DIR=str(tmp_path / "other"), AUDIT_SIGNING_KEY=seed)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_standalone_mode_generates_a_key_once_under_var(tmp_path):
    first = _manage("shell", "-c", SHOW_PUBLIC_KEY, VAR_DIR=str(tmp_path))
    second = _manage("shell", "-c", SHOW_PUBLIC_KEY, VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    key_file = tmp_path / "audit_signing_key.pem"
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert key_file.stat().st_mode & 0o077 == 0
