"""Drill: synchronous failover inside the region.

Three real PostgreSQL 15 nodes as patroni.yml runs them (pg0 primary; pg1 and pg2 replicas with
synchronous_standby_names = 'ANY 1 (pg1, pg2)'). A writer inserts orders and records each
acknowledged commit; pg0 is killed with SIGKILL mid-load; the most advanced replica is promoted (as
Patroni elects it), the other follows it, and the old primary rejoins through pg_rewind.
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

LOAD_SECONDS = 3.0


@pytest.fixture
def sandbox():
    require_drill_host()
    with Sandbox() as sandbox:
        yield sandbox


def streaming_standbys(primary: Node) -> dict[str, str]:
    return dict(primary.query("SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming'"))


def first_accepted_write(node: Node, *, client_order_id: int, timeout: float) -> float:
    """Retry one insert until the node accepts it; return time.monotonic() at the acknowledgement."""

    def attempt():
        with node.connect() as conn:
            conn.execute("SET statement_timeout = '2s'")
            conn.execute(
                "INSERT INTO orders (client_order_id, symbol, side, quantity, price)"
                " VALUES (%s, 'NIFTY25NOVFUT', 'SELL', 75, 24151.00)",
                (client_order_id,),
            )
            return time.monotonic()

    return wait_for(attempt, timeout=timeout, interval=0.05, what=f"a write accepted by {node.name}")


def test_a_killed_primary_loses_no_acknowledged_commit_and_rejoins_as_a_replica(sandbox):
    quorum = primary_setting("synchronous_standby_names")
    assert quorum == "ANY 1 (pg1, pg2)"
    pg0 = sandbox.init_primary("pg0")
    create_orders_table(pg0)
    # Each node's own list for the day it is promoted: ANY 1 of the other two.
    pg1 = sandbox.clone_standby(pg0, "pg1", sync_names="ANY 1 (pg0, pg2)")
    pg2 = sandbox.clone_standby(pg0, "pg2", sync_names="ANY 1 (pg0, pg1)")
    pg0.alter_system("synchronous_standby_names", quorum)
    wait_for(
        lambda: streaming_standbys(pg0) == {"pg1": "quorum", "pg2": "quorum"},
        timeout=30,
        what="pg1 and pg2 streaming as quorum standbys",
    )

    writer = Writer(pg0).start()
    time.sleep(LOAD_SECONDS)
    killed_at = time.monotonic()
    pg0.kill9()
    writer.stop()
    load_seconds = killed_at - writer.started_at
    acked = writer.acked_ids()
    assert len(acked) > 100, f"the writer barely ran: {writer.errors[:3]}"

    # Elect the replica that received the most WAL, as Patroni does; the other one follows it.
    received = {node: lsn_bytes(node.scalar("SELECT pg_last_wal_receive_lsn()::text")) for node in (pg1, pg2)}
    leader = max(received, key=received.get)
    follower = pg2 if leader is pg1 else pg1
    promoted = sandbox.script("promote.sh", "-D", str(leader.datadir), "-o", pg0.conninfo(), "-t", "60")
    assert promoted.returncode == 0, promoted.stderr
    promoted_at = time.monotonic()
    leader.query("SELECT pg_create_physical_replication_slot(%s, true)", (follower.name,))
    follower.alter_system("primary_conninfo", sandbox.follow_settings(leader, follower.name).split("'")[1])
    accepted_at = first_accepted_write(leader, client_order_id=9_000_000_001, timeout=60)
    rto = accepted_at - killed_at

    survivors = surviving_ids(leader)
    lost = acked - survivors
    in_doubt_survived = len(set(writer.in_doubt) & survivors)
    assert not lost, f"{len(lost)} acknowledged commit(s) lost on failover, e.g. {sorted(lost)[:5]}"

    # The old primary comes back as a replica of the new one and replication resumes.
    pg0.wait_reaped()
    rejoin_started = time.monotonic()
    rejoined = sandbox.script(
        "rejoin.sh", "-D", str(pg0.datadir), "-s", leader.conninfo(), "-n", "pg0", "-p", str(pg0.port), "-S", "pg0",
        "-t", "60",
    )  # fmt: skip
    assert rejoined.returncode == 0, rejoined.stderr
    rejoin_seconds = time.monotonic() - rejoin_started
    assert pg0.in_recovery()
    first_accepted_write(leader, client_order_id=9_000_000_002, timeout=30)
    wait_for(
        lambda: pg0.scalar("SELECT count(*) FROM orders WHERE client_order_id = 9000000002") == 1,
        timeout=30,
        what="the rejoined pg0 to replay a new order",
    )
    wait_for(
        lambda: set(streaming_standbys(leader)) == {"pg0", follower.name},
        timeout=30,
        what="both replicas streaming from the new primary",
    )
    assert surviving_ids(pg0) >= acked

    record(
        "sync_failover",
        {
            "acknowledged_commits": len(acked),
            "committed_but_lost": len(lost),
            "in_doubt_at_kill": len(writer.in_doubt),
            "in_doubt_that_survived": in_doubt_survived,
            "rows_per_second": round(len(acked) / load_seconds),
            "promoted": leader.name,
            "promote_seconds": round(promoted_at - killed_at, 3),
            "rto_seconds": round(rto, 3),
            "rejoin_seconds": round(rejoin_seconds, 3),
            "note": "RTO here is kill to first accepted write with an immediate decision; "
            "under Patroni add up to ttl (30 s) for the leader lease to expire",
        },
    )
