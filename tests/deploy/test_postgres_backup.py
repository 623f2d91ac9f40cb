"""deploy/postgres/backup.sh, the script the backup CronJob runs, against the real database."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.deploy.commands import ROOT, require_tool

SCRIPT = ROOT / "deploy" / "postgres" / "backup.sh"


def _database_url() -> str:
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


def _backup(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "BACKUP_DIR": str(tmp_path), **env},
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backup_is_a_readable_dump_with_its_checksum_and_old_dumps_are_pruned(tmp_path):
    require_tool("pg_dump")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS backup_probe (id int)")
    old = tmp_path / "terminal-20200101T000000Z.dump"
    old.write_bytes(b"old")
    (tmp_path / "terminal-20200101T000000Z.dump.sha256").write_text("x")
    ancient = time.time() - 40 * 86400
    os.utime(old, (ancient, ancient))
    try:
        result = _backup(tmp_path, DATABASE_URL=_database_url(), BACKUP_KEEP_DAYS="35")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS backup_probe")
    assert result.returncode == 0, result.stderr
    assert '"message": "backup written"' in result.stdout and '"pruned": 1' in result.stdout
    dumps = sorted(tmp_path.glob("terminal-*.dump"))
    assert len(dumps) == 1 and dumps[0] != old
    listing = subprocess.run(["pg_restore", "--list", str(dumps[0])], capture_output=True, text=True, check=True)
    assert "TABLE public backup_probe" in listing.stdout
    check = subprocess.run(["sha256sum", "--check", dumps[0].name + ".sha256"], cwd=tmp_path, capture_output=True)
    assert check.returncode == 0
    assert not list(tmp_path.glob(".*.partial"))


def test_a_backup_refuses_to_run_without_its_settings_or_with_a_bad_retention(tmp_path):
    assert _backup(tmp_path).returncode != 0
    result = _backup(tmp_path, DATABASE_URL="postgres://nobody@127.0.0.1:1/none", BACKUP_KEEP_DAYS="a week")
    assert result.returncode == 2 and "whole number of days" in result.stderr
    result = _backup(tmp_path / "missing", DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert result.returncode == 2 and "not a writable directory" in result.stderr


def test_a_failed_dump_fails_the_run_and_leaves_nothing_behind(tmp_path):
    require_tool("pg_dump")
    result = _backup(tmp_path, DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert result.returncode != 0
    assert not list(tmp_path.iterdir())
