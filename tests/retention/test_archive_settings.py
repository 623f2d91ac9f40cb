"""The archives' storage follows ARCHIVE_BUCKET, and the signed audit checkpoints go to the same bucket;
RETENTION_YEARS below 5 stops `manage.py check`. Each case runs the settings in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

SHOW = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({k: s.STORAGES[k] for k in ('archives', 'audit_checkpoints')}, default=str))"
)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    drop = {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV", "AUDIT_CHECKPOINT_BUCKET", "ARCHIVE_BUCKET", "RETENTION_YEARS"}
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_by_default_archives_and_checkpoints_are_files_under_var(tmp_path):
    result = _manage("shell", "-c", SHOW, VAR_DIR=str(tmp_path))
    stores = json.loads(result.stdout.strip().splitlines()[-1])
    assert stores["archives"]["OPTIONS"]["location"] == str(tmp_path / "archives")
    assert stores["audit_checkpoints"]["OPTIONS"]["location"] == str(tmp_path / "audit_checkpoints")


def test_with_an_archive_bucket_checkpoints_go_to_the_same_bucket(tmp_path):
    result = _manage(
        "shell",
        "-c",
        SHOW,
        VAR_DIR=str(tmp_path),
        ARCHIVE_BUCKET="terminal-records",
        ARCHIVE_ENDPOINT_URL="http://127.0.0.1:9",
        ARCHIVE_REGION="ap-south-1",
    )
    stores = json.loads(result.stdout.strip().splitlines()[-1])
    archives, checkpoints = stores["archives"]["OPTIONS"], stores["audit_checkpoints"]["OPTIONS"]
    assert archives["bucket_name"] == checkpoints["bucket_name"] == "terminal-records"
    assert archives["location"] == "archives" and checkpoints["location"] == "audit-checkpoints"
    assert archives["file_overwrite"] is False and checkpoints["file_overwrite"] is False
    assert checkpoints["endpoint_url"] == "http://127.0.0.1:9" and checkpoints["region_name"] == "ap-south-1"


@pytest.mark.parametrize(("years", "code"), [("4", 1), ("abc", 2)])
def test_a_bad_retention_window_stops_the_start(tmp_path, years, code):
    result = _manage("check", VAR_DIR=str(tmp_path), RETENTION_YEARS=years)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert ("retention.E001" if code == 1 else "RETENTION_YEARS") in result.stderr
