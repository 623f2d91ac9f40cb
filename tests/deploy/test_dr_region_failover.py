"""Drill: losing the primary region and promoting the asynchronous DR standby.

The DR standby (dr0) replicates asynchronously, as patroni-standby-cluster.yml runs it. The primary
is killed with SIGKILL mid-load, dr0 is promoted with promote.sh, and what the promotion lost is
measured: acknowledged orders missing, WAL bytes not received, and the time window they span, which
must stay within the 5-minute RPO. A second variant cuts the streaming link first, so dr0 lives on
the WAL archive alone, the worst case that archive_timeout bounds.
"""

from __future__ import annotations

import time

import pytest

from tests.deploy.dr_cluster import (
    Node,
    Sandbox,
    Writer,
    create_orders_table,
    lsn_bytes,
    record,
    require_drill_host,
    surviving_ids,
    wait_for,
)
from tests.deploy.test_dr_config import primary_setting

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RPO_SECONDS = 300
RTO_SECONDS = 900
LOAD_SECONDS = 3.0
# The archive-only variant runs on a scaled clock: archive_timeout is 60 s in production.
DRILL_ARCHIVE_TIMEOUT = 3


@pytest.fixture
def sandbox():
    require_drill_host()
    with Sandbox() as sandbox:
        yield sandbox


def _segment_number(lsn: int) -> int:
    return lsn // (16 * 1024 * 1024)


def _newest_archived_segment(sandbox: Sandbox) -> int:
    names = [path.name for path in sandbox.archive.iterdir() if len(path.name) == 24 and path.name.isalnum()]
    newest = max(names)
    return (int(newest[8:16], 16) << 8) + int(newest[16:24], 16)


def _fail_over(sandbox: Sandbox, old: Node, dr: Node, writer: Writer, killed_at: float) -> dict:
    """Promote dr, take the first write, and measure what the promotion lost; return the numbers."""
    received = lsn_bytes(
        dr.scalar("SELECT greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), pg_last_wal_replay_lsn())::text")
    )
    promoted = sandbox.script("promote.sh", "-D", str(dr.datadir), "-o", old.conninfo(), "-t", "60")
    assert promoted.returncode == 0, promoted.stderr

    def first_write():
        dr.query(
            "INSERT INTO orders (client_order_id, symbol, side, quantity, price)"
            " VALUES (9000000001, 'RELIANCE', 'BUY', 1, 2900)"
        )
        return time.monotonic()

    rto = wait_for(first_write, timeout=60, what="the first write on the DR primary") - killed_at

    survivors = surviving_ids(dr)
    acked = writer.acked
    lost = [entry for entry in acked if entry[0] not in survivors]
    kept = [entry for entry in acked if entry[0] in survivors]
    newest_ack = max(entry[1] for entry in acked)
    newest_kept = max((entry[1] for entry in kept), default=writer.started_wall)
    return {
        "acknowledged_commits": len(acked),
        "lost_rows": len(lost),
        "wal_gap_bytes": max(0, max(entry[2] for entry in acked) - received),
        "lost_window_seconds": round(newest_ack - newest_kept, 3) if lost else 0.0,
        "rto_seconds": round(rto, 3),
    }


def test_promoting_the_streaming_dr_standby_loses_less_than_the_rpo(sandbox):
    pg0 = sandbox.init_primary("pg0")
    create_orders_table(pg0)
    dr0 = sandbox.clone_standby(pg0, "dr0")
    wait_for(
        lambda: pg0.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'dr0'") == [("async",)],
        timeout=30,
        what="dr0 streaming asynchronously",
    )

    # Split brain guard: promote.sh refuses while the old primary still answers.
    refused = sandbox.script("promote.sh", "-D", str(dr0.datadir), "-o", pg0.conninfo())
    assert refused.returncode != 0
    assert "still accepts connections" in refused.stderr
    assert dr0.in_recovery()

    writer = Writer(pg0).start()
    lag_bytes, lag_seconds = [], []
    deadline = time.monotonic() + LOAD_SECONDS
    while time.monotonic() < deadline:
        row = pg0.query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), coalesce(extract(epoch FROM replay_lag), 0)"
            " FROM pg_stat_replication WHERE application_name = 'dr0'"
        )
        if row and row[0][0] is not None:
            lag_bytes.append(int(row[0][0]))
            lag_seconds.append(float(row[0][1]))
        time.sleep(0.2)
    killed_at = time.monotonic()
    pg0.kill9()
    writer.stop()

    numbers = _fail_over(sandbox, pg0, dr0, writer, killed_at)
    numbers["rows_per_second"] = round(numbers["acknowledged_commits"] / (killed_at - writer.started_at))
    numbers["max_replay_lag_bytes"] = max(lag_bytes)
    numbers["max_replay_lag_seconds"] = round(max(lag_seconds), 3)
    record("region_failover_streaming", numbers)
    assert numbers["lost_window_seconds"] <= RPO_SECONDS
    assert numbers["rto_seconds"] <= RTO_SECONDS


def test_promoting_a_dr_standby_fed_only_by_the_archive_loses_at_most_archive_timeout(sandbox):
    assert int(primary_setting("archive_timeout")) == 60
    pg0 = sandbox.init_primary("pg0", settings=f"archive_timeout = {DRILL_ARCHIVE_TIMEOUT}")
    create_orders_table(pg0)
    # The inter-region link is down: dr0 has no upstream and replays what reaches the archive.
    dr0 = sandbox.clone_standby(pg0, "dr0", settings="wal_retrieve_retry_interval = 1s")
    dr0.alter_system("primary_conninfo", "")
    wait_for(lambda: dr0.scalar("SELECT count(*) FROM pg_stat_wal_receiver") == 0, timeout=30, what="link cut")

    writer = Writer(pg0, threads=2).start()
    time.sleep(3 * DRILL_ARCHIVE_TIMEOUT)
    killed_at = time.monotonic()
    pg0.kill9()
    writer.stop()

    # As the runbook says: before promoting, let the DR standby replay everything already archived.
    newest = _newest_archived_segment(sandbox)
    wait_for(
        lambda: _segment_number(lsn_bytes(dr0.scalar("SELECT pg_last_wal_replay_lsn()::text"))) >= newest,
        timeout=30,
        what="dr0 to replay the newest archived segment",
    )
    numbers = _fail_over(sandbox, pg0, dr0, writer, killed_at)
    numbers["archive_timeout_seconds"] = DRILL_ARCHIVE_TIMEOUT
    record("region_failover_archive_only", numbers)
    # Lost: what was written since the last forced segment switch, plus the archiver's copy time.
    assert numbers["lost_window_seconds"] <= DRILL_ARCHIVE_TIMEOUT + 2
    assert numbers["lost_window_seconds"] <= RPO_SECONDS
