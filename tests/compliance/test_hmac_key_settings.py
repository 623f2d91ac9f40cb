"""The audit links' HMAC keys come from AUDIT_HMAC_KEYS, or are generated once outside production."""

import base64
import os
import subprocess
import sys

from django.conf import settings

SHOW_KEYS = (
    "from django.conf import settings; "
    "print(settings.AUDIT_HMAC_KEY_ID, sorted((k, v.hex()) for k, v in settings.AUDIT_HMAC_KEYS.items()))"
)
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x7" * 30,
    "ALLOWED_HOSTS": "terminal.example.com",
    "BROKER_ENCRYPTION_KEYS": "k1:" + "A" * 43,
    "AUDIT_SIGNING_KEY": base64.b64encode(b"\x01" * 32).decode(),
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    for name in ("AUDIT_HMAC_KEYS", "AUDIT_HMAC_KEY_ID"):
        base.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_production_requires_audit_hmac_keys(tmp_path):
    result = _manage("check", VAR_DIR=str(tmp_path), **PRODUCTION)
    assert result.returncode == 2
    assert "error: AUDIT_HMAC_KEYS=" in result.stderr and "Traceback" not in result.stderr


def test_malformed_keys_stop_start_up_without_echoing_them(tmp_path):
    for raw, reason in (
        ("not-a-key", "entry 1 is not id:base64key"),
        ("a1:" + base64.b64encode(b"short").decode(), "key 'a1' is 5 bytes"),
        ("a1:@@@@", "key 'a1' is not base64"),
        (f"a1:{_key()},a1:{_key()}", "key id 'a1' appears twice"),
    ):
        result = _manage("check", VAR_DIR=str(tmp_path), AUDIT_HMAC_KEYS=raw)
        assert result.returncode == 2, raw
        assert "AUDIT_HMAC_KEYS='<hidden>' is invalid" in result.stderr and reason in result.stderr
        assert raw.split(":")[-1] not in result.stderr


def test_the_current_key_id_must_be_one_of_the_keys(tmp_path):
    result = _manage("check", VAR_DIR=str(tmp_path), AUDIT_HMAC_KEYS=f"a1:{_key()}", AUDIT_HMAC_KEY_ID="b2")
    assert result.returncode == 2 and "AUDIT_HMAC_KEY_ID='b2' is invalid" in result.stderr


def test_several_keys_and_the_current_one_are_read(tmp_path):
    keys = f"a1:{_key()},a2:{_key()}"
    result = _manage("shell", "-c", SHOW_KEYS, VAR_DIR=str(tmp_path), AUDIT_HMAC_KEYS=keys, AUDIT_HMAC_KEY_ID="a2")
    assert result.returncode == 0, result.stderr
    assert "a2 [('a1', " in result.stdout and "('a2', " in result.stdout


def test_standalone_mode_generates_a_key_once_under_var(tmp_path):
    first = _manage("shell", "-c", SHOW_KEYS, VAR_DIR=str(tmp_path))
    second = _manage("shell", "-c", SHOW_KEYS, VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and "a1 [('a1', " in first.stdout
    key_file = tmp_path / "audit_hmac_keys"
    assert key_file.stat().st_mode & 0o077 == 0
