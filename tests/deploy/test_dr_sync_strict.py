"""Drill: losing the only synchronous replica under strict synchronous replication.

With synchronous_mode_strict Patroni never empties synchronous_standby_names, so PostgreSQL holds
every commit until a replica confirms it. The drill checks that writes then block instead of
quietly succeeding without a copy, that only a client-side cancel bounds the wait (PostgreSQL 15's
statement_timeout is disarmed before the commit waits) and even then yields a warning, not an
acknowledgement, and that the held writes complete once the replica is back.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.deploy.dr_cluster import Sandbox, Writer, create_orders_table, record, require_drill_host, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STATEMENT_TIMEOUT_SECONDS = 1


@pytest.fixture
def sandbox():
    require_drill_host()
    with Sandbox() as sandbox:
        yield sandbox


def test_writes_block_rather_than_go_asynchronous_when_the_synchronous_replica_is_lost(sandbox):
    pg0 = sandbox.init_primary("pg0")
    create_orders_table(pg0)
    pg1 = sandbox.clone_standby(pg0, "pg1")
    pg0.alter_system("synchronous_standby_names", "ANY 1 (pg1)")
    wait_for(
        lambda: pg0.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pg1'") == [("quorum",)],
        timeout=30,
        what="pg1 as the synchronous standby",
    )
    pg0.query("INSERT INTO orders (client_order_id, symbol, side, quantity, price) VALUES (1, 'SBIN', 'BUY', 1, 800)")

    pg1.kill9()

    # One order with a statement_timeout. PostgreSQL 15 disarms statement_timeout before the commit
    # record is written, so the timeout does not end the wait; only a cancel from the client does,
    # and then the server answers with a warning that the commit is local only, never a plain success.
    notices: list[str] = []
    outcome: list[object] = []
    conn = pg0.connect()
    conn.add_notice_handler(lambda diag: notices.append(f"{diag.severity}: {diag.message_primary}"))
    conn.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT_SECONDS}s'")

    def insert():
        try:
            conn.execute(
                "INSERT INTO orders (client_order_id, symbol, side, quantity, price) VALUES (2, 'SBIN', 'BUY', 1, 801)"
            )
            outcome.append("returned")
        except psycopg.Error as exc:
            outcome.append(exc)

    started = time.monotonic()
    order = threading.Thread(target=insert, daemon=True)
    order.start()
    order.join(3 * STATEMENT_TIMEOUT_SECONDS)
    assert order.is_alive(), f"the commit returned without a synchronous replica: {outcome} {notices}"
    blocked_for = time.monotonic() - started
    conn.cancel_safe()
    order.join(10)
    assert outcome == ["returned"], outcome
    assert any("canceling wait for synchronous replication" in notice for notice in notices), notices
    conn.close()

    # Writers without a timeout hold in SyncRep: nothing is acknowledged while no replica confirms.
    writer = Writer(pg0, threads=2).start()
    wait_for(
        lambda: pg0.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") >= 2,
        timeout=10,
        what="two writers waiting for synchronous replication",
    )
    time.sleep(1)
    assert writer.acked_ids() == set(), "a commit was acknowledged with no synchronous replica"
    assert pg0.scalar("SHOW synchronous_standby_names") == "ANY 1 (pg1)", "strict mode keeps the standby list"

    # The replica comes back: the held commits complete and everything reaches it.
    restarted = time.monotonic()
    pg1.wait_reaped()
    pg1.start()
    wait_for(lambda: writer.acked_ids(), timeout=30, what="held writes to complete once pg1 is back")
    resumed_after = time.monotonic() - restarted
    writer.stop()
    assert not writer.errors, writer.errors[:3]
    wait_for(
        lambda: pg1.scalar("SELECT count(*) FROM orders WHERE client_order_id IN (1, 2)") == 2,
        timeout=30,
        what="the locally committed order to reach pg1",
    )

    record(
        "sync_replica_loss",
        {
            "statement_timeout_seconds": STATEMENT_TIMEOUT_SECONDS,
            "still_blocked_after_seconds": round(blocked_for, 3),
            "finding": "statement_timeout does not bound the synchronous-commit wait in PostgreSQL 15; "
            "a client-side cancel does, and the server then warns that the commit is local only",
            "acknowledged_while_replica_down": 0,
            "writes_resumed_seconds_after_replica_restart": round(resumed_after, 3),
            "server_said": notices[-1] if notices else "",
        },
    )
