"""Drill: the primary database dies under a load of orders and the standby takes over.

Two real PostgreSQL 15 nodes of tests/deploy/dr_cluster.py (the production fragments of
deploy/postgres/dr/): pg0 primary, pg1 its streaming standby, synchronous (``ANY 1 (pg1)``, as
patroni.yml's quorum) or asynchronous (the DR standby's mode). The served terminal (gunicorn, uvicorn
workers) reaches the database through a TCP proxy of the drill's, standing in for the address the
deployment moves to the new leader (the Kubernetes Service Patroni labels, or the DR overlay's
DATABASE_URL): mid-load pg0 is killed (SIGKILL of the postmaster and its children), pg1 is promoted
with deploy/postgres/dr/promote.sh, and the proxy is repointed at it. Replication runs through a
second proxy, the region link, which stops forwarding LINK_STALL_SECONDS before the kill, so the
standby is behind when the primary dies (on loopback it never is otherwise).

Measured: RTO, from pg0's death to the first order sent after it and acknowledged (on pg1); RPO,
acknowledged orders missing on pg1, the WAL bytes pg1 had not received of what pg0 was last seen to
have written, and the time those orders span. Synchronous: every acknowledged order must be on pg1.
Both: no order duplicated, no order half-written, positions equal to trades, the audit chains
verify, and the order book and positions the API shows equal pg1's.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.deploy.dr_cluster import Node, Sandbox, lsn_bytes, record, require_drill_host, wait_for
from tests.drills.dbfaults import OUT, Load, TcpProxy, check, make_world, served, write_numbers

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

CLIENTS = 6
ACCOUNTS_PER_CLIENT = 2
LOAD_SECONDS = 2.0
# The replication link stops forwarding this long before the primary dies: the standby falls
# behind as a slow region link would (on loopback it is never behind by more than a few ms).
LINK_STALL_SECONDS = 1.0
AFTER_SECONDS = 2.0
DATABASE = "terminal"


@pytest.fixture
def sandbox():
    require_drill_host()
    with Sandbox() as sandbox:
        yield sandbox


class WalSampler:
    """The primary's WAL write position, read every 50 ms until it stops answering: the last sample
    is a lower bound of the WAL it had written when it died."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self.node.connect() as conn:
                while not self._stop.wait(0.05):
                    self.last = lsn_bytes(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
        except psycopg.Error:
            return

    def start(self) -> WalSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def url_of(port: int) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{DATABASE}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_standby_takes_over_under_load_and_no_acknowledged_order_is_lost(sandbox, mode):
    name = f"db_failover_{mode}"
    pg0 = sandbox.init_primary("pg0")
    pg0.query(f"CREATE DATABASE {DATABASE}")
    pg1 = sandbox.clone_standby(pg0, "pg1")
    var = OUT / name
    with TcpProxy(pg0.port) as link, TcpProxy(pg0.port) as proxy, served(var, url_of(proxy.port)) as base:
        pg1.alter_system("primary_conninfo", f"host=127.0.0.1 port={link.port} user=postgres application_name=pg1")
        sessions, bodies = make_world(var, url_of(pg0.port), CLIENTS, ACCOUNTS_PER_CLIENT)
        if mode == "sync":
            pg0.alter_system("synchronous_standby_names", "ANY 1 (pg1)")
            wanted = "quorum"
        else:
            wanted = "async"
        wait_for(
            lambda: (
                link.connections > 0
                and pg0.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pg1'")
                == [(wanted,)]
            ),
            timeout=30,
            what=f"pg1 streaming as a {wanted} standby through the link",
        )
        sampler = WalSampler(pg0).start()
        load = Load(name.replace("_", "-"), int(urlsplit(base).port or 80), sessions, bodies).start()
        time.sleep(LOAD_SECONDS)
        link.stall()  # synchronous: commits now wait; asynchronous: they go on, unreplicated
        time.sleep(LINK_STALL_SECONDS)

        killed_at = time.monotonic()
        pg0.kill9()
        sampler.stop()
        acknowledged_at_kill = load.acknowledged_count()
        received = lsn_bytes(
            pg1.scalar("SELECT greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), pg_last_wal_replay_lsn())::text")
        )
        link.repoint(pg0.port)  # drops the held WAL with the link: pg1 keeps what it had received
        promoted = sandbox.script("promote.sh", "-D", str(pg1.datadir), "-o", pg0.conninfo(), "-t", "60")
        assert promoted.returncode == 0, promoted.stderr
        promoted_at = time.monotonic()
        proxy.repoint(pg1.port)  # the Service now selects the new leader
        repointed_at = time.monotonic()

        wait_for(lambda: load.first_success_after(killed_at), timeout=60, what="an order acknowledged on pg1")
        time.sleep(AFTER_SECONDS)
        load.stop()
        first_after = load.first_success_after(killed_at)
        rto = None if first_after is None else first_after - killed_at
        load.ledger.recovery_seconds = rto
        verdict = check(load, var, url_of(pg1.port))

    lost_keys = {entry.split()[1] for entry in verdict.tally.lost}
    acked_times = {a.key: a.answered_at for a in load.answers if a.status is not None and 200 <= a.status < 300}
    lost_times = [acked_times[key] for key in lost_keys if key in acked_times]
    kept_times = [t for key, t in acked_times.items() if key not in lost_keys and t <= killed_at]
    lost_window = (max(lost_times) - max(kept_times, default=load.answers[0].sent_at)) if lost_times else 0.0
    wal_gap = max(0, sampler.last - received)
    outcomes = load.outcomes(killed_at, first_after or float("inf"))
    server_errors = [a for a in load.answers if a.status is not None and a.status >= 500]
    lines = [
        verdict.tally.line(),
        f"{mode}: replication link stalled {LINK_STALL_SECONDS:.1f} s, then the primary killed after "
        f"{acknowledged_at_kill} acknowledged orders; promote.sh "
        f"{promoted_at - killed_at:.2f} s after the kill, proxy repointed at {repointed_at - killed_at:.2f} s",
        f"RTO {rto:.2f} s (kill to the first order sent after it and acknowledged)"
        if rto is not None
        else "RTO: no order acknowledged after the kill",
        f"RPO: {len(lost_keys)} acknowledged orders missing on the new primary, spanning {lost_window:.2f} s; "
        f"WAL not received by the standby >= {wal_gap} bytes",
        f"answers between the kill and recovery: {dict(outcomes)}; 5xx answers in all: {len(server_errors)} "
        f"({sorted({f'{a.status} {a.code}' for a in server_errors})})",
        f"orders half-written {len(verdict.half_written)}; positions not equal to trades {len(verdict.positions_off)}; "
        f"audit: {verdict.audit}; pages differing from the database {len(verdict.page_off)}",
    ]
    write_numbers(name, lines)
    record(
        f"terminal_failover_{mode}",
        {
            "acknowledged_orders": verdict.tally.acknowledged,
            "acknowledged_orders_lost": len(lost_keys),
            "lost_window_seconds": round(lost_window, 3),
            "wal_gap_bytes": wal_gap,
            "rto_seconds": None if rto is None else round(rto, 3),
            "promote_seconds": round(promoted_at - killed_at, 3),
            "duplicated": len(verdict.tally.duplicated),
        },
    )
    summary = "\n".join(lines)
    assert rto is not None, summary
    assert not [a for a in server_errors if a.code != "database_unavailable"], summary
    assert not verdict.tally.duplicated, summary
    if mode == "sync":  # asynchronous replication may lose what the standby had not received: printed above
        verdict.tally.assert_whole()
    other = [p for p in verdict.problems() if not p.startswith(verdict.tally.name)]
    assert not other, f"{summary}\n" + "\n".join(other)
