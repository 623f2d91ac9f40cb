"""Drill: point-in-time recovery from a verified base backup and the WAL archive.

A primary archives through archive-wal.sh; base-backup.sh takes and verifies a backup; orders are
written in batches around a target time T; pitr-restore.sh restores to T into a scratch cluster.
Negative variants: a segment missing from the archive, with and without the script's own archive
check, and a backup whose files were altered. Each must fail loudly, never restore short.
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
from pathlib import Path

import pytest

from tests.deploy.dr_cluster import (
    PG_BIN,
    PG_USER,
    Node,
    Sandbox,
    as_postgres,
    create_orders_table,
    free_port,
    record,
    require_drill_host,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _insert(node: Node, first: int, count: int) -> None:
    with node.connect() as conn, conn.transaction():
        for client_order_id in range(first, first + count):
            conn.execute(
                "INSERT INTO orders (client_order_id, symbol, side, quantity, price)"
                " VALUES (%s, 'INFY', 'BUY', 10, 1500)",
                (client_order_id,),
            )


def _switch_wal(node: Node) -> str:
    """Close the current WAL segment; return its file name once it is archived."""
    segment = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.query("SELECT pg_switch_wal()")
    wait_for(
        lambda: (node.scalar("SELECT last_archived_wal FROM pg_stat_archiver") or "") >= segment,
        timeout=30,
        what=f"{segment} archived",
    )
    return segment


def _copy_as_postgres(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    pg = pwd.getpwnam(PG_USER)
    for path in [target, *target.rglob("*")]:
        os.chown(path, pg.pw_uid, pg.pw_gid)
    return target


@pytest.fixture(scope="module")
def history():
    """A primary with a verified base backup, an archive, and orders written around a target time."""
    require_drill_host()
    with Sandbox() as sandbox:
        pg0 = sandbox.init_primary("pg0")
        create_orders_table(pg0)
        _insert(pg0, 1, 100)
        started = time.monotonic()
        backup = sandbox.script("base-backup.sh", "-d", pg0.conninfo(), "-o", str(sandbox.root / "backups"))
        assert backup.returncode == 0, backup.stderr
        backup_seconds = time.monotonic() - started
        _insert(pg0, 1_000, 200)
        _switch_wal(pg0)
        _insert(pg0, 2_000, 300)
        needed_segment = _switch_wal(pg0)  # after the backup, before T: replay cannot skip it
        time.sleep(0.2)
        target = pg0.scalar("SELECT clock_timestamp()::text")
        ids_at_target = {row[0] for row in pg0.query("SELECT client_order_id FROM orders")}
        time.sleep(0.2)
        _insert(pg0, 3_000, 400)
        _switch_wal(pg0)
        yield {
            "sandbox": sandbox,
            "primary": pg0,
            "backup": Path(backup.stdout.strip()),
            "backup_seconds": backup_seconds,
            "target": target,
            "ids_at_target": ids_at_target,
            "needed_segment": needed_segment,
        }


def _restore(history: dict, name: str, *extra: str, archive: Path | None = None, backup: Path | None = None):
    sandbox = history["sandbox"]
    port = free_port()
    started = time.monotonic()
    result = sandbox.script(
        "pitr-restore.sh",
        "-b", str(backup or history["backup"]),
        "-a", str(archive or sandbox.archive),
        "-t", history["target"],
        "-D", str(sandbox.root / name),
        "-p", str(port),
        "-T", "120",
        *extra,
    )  # fmt: skip
    return result, Node(name=name, port=port, datadir=sandbox.root / name), time.monotonic() - started


def test_the_base_backup_passes_pg_verifybackup(history):
    result = as_postgres([str(PG_BIN / "pg_verifybackup"), str(history["backup"])], check=False)
    assert result.returncode == 0, result.stderr
    assert "successfully verified" in result.stdout


def test_a_restore_to_a_target_time_has_exactly_the_orders_committed_by_then(history):
    result, restored, seconds = _restore(history, "restore-ok")
    assert result.returncode == 0, result.stderr
    assert "recovery stopping before commit" in result.stderr
    restored_ids = {row[0] for row in restored.query("SELECT client_order_id FROM orders")}
    assert restored_ids == history["ids_at_target"]
    assert not restored.in_recovery()
    assert restored.scalar("SHOW archive_mode") == "off", "a scratch copy must never write to the production archive"
    source_count = history["primary"].scalar("SELECT count(*) FROM orders")
    restored.stop()
    record(
        "pitr",
        {
            "rows_in_source_now": source_count,
            "rows_at_target_time": len(history["ids_at_target"]),
            "rows_restored": len(restored_ids),
            "base_backup_seconds": round(history["backup_seconds"], 3),
            "restore_seconds": round(seconds, 3),
        },
    )


def test_a_restore_refuses_an_archive_with_a_missing_segment(history):
    sandbox = history["sandbox"]
    archive = _copy_as_postgres(sandbox.archive, sandbox.root / "archive-gap")
    (archive / history["needed_segment"]).unlink()
    result, restored, _ = _restore(history, "restore-gap", archive=archive)
    assert result.returncode != 0
    assert f"segment {history['needed_segment']} is missing" in result.stderr
    assert restored.postmaster_pid() is None
    record(
        "pitr_missing_segment", {"exit_status": result.returncode, "message": result.stderr.strip().splitlines()[-1]}
    )


def test_postgresql_itself_stops_a_replay_that_runs_out_of_wal_before_the_target(history):
    sandbox = history["sandbox"]
    archive = _copy_as_postgres(sandbox.archive, sandbox.root / "archive-gap-unchecked")
    (archive / history["needed_segment"]).unlink()
    result, restored, _ = _restore(history, "restore-gap-unchecked", "-n", archive=archive)
    assert result.returncode != 0
    assert "recovery ended before configured recovery target was reached" in result.stderr
    assert "restore FAILED" in result.stderr
    assert restored.postmaster_pid() is None


def test_a_restore_refuses_a_backup_whose_files_changed(history):
    sandbox = history["sandbox"]
    backup = _copy_as_postgres(history["backup"], sandbox.root / "backup-altered")
    (backup / "PG_VERSION").write_text("14\n")
    result, _, _ = _restore(history, "restore-altered", backup=backup)
    assert result.returncode != 0
    assert "pg_verifybackup FAILED" in result.stderr
    assert not (sandbox.root / "restore-altered").exists()


def test_the_archive_check_passes_when_current_and_fails_when_archiving_fails(history):
    sandbox, pg0 = history["sandbox"], history["primary"]
    healthy = sandbox.script("check-archive.sh", "-d", pg0.conninfo(), "-m", "300")
    assert healthy.returncode == 0, healthy.stderr
    assert "pending_segments=0" in healthy.stdout

    sandbox.archive.chmod(0o500)  # the archive stops accepting files, as when object storage is unreachable
    try:
        _insert(pg0, 5_000, 10)
        pg0.query("SELECT pg_switch_wal()")
        wait_for(lambda: pg0.scalar("SELECT failed_count FROM pg_stat_archiver") > 0, timeout=30, what="a failure")
        failing = sandbox.script("check-archive.sh", "-d", pg0.conninfo(), "-m", "300")
    finally:
        sandbox.archive.chmod(0o700)
    assert failing.returncode == 1
    assert "pending_segments=1" in failing.stdout
    assert "last archive attempt failed" in failing.stderr
