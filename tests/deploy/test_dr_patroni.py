"""Drill: automatic failover by Patroni itself.

Three Patroni members (pg0..pg2) built from deploy/postgres/dr/patroni.yml, with a one-member etcd
on loopback as the DCS in place of the Kubernetes API, and the lease scaled down (ttl 10 s instead
of 30 s) so the drill stays short. The leader's node is lost (Patroni and PostgreSQL killed with
SIGKILL) mid-load; Patroni must elect a synchronous replica on its own, lose no acknowledged commit,
and rewind the old leader back in as a replica when it returns.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.deploy.dr_cluster import (
    DR_DIR,
    PG_BIN,
    PG_USER,
    Node,
    Sandbox,
    Writer,
    create_orders_table,
    free_port,
    record,
    require_drill_host,
    surviving_ids,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 2, 4
LOAD_SECONDS = 3.0


class Member:
    """One Patroni process and the PostgreSQL it manages."""

    def __init__(self, sandbox: Sandbox, name: str, etcd: str) -> None:
        self.name = name
        self.sandbox = sandbox
        self.node = Node(name=name, port=free_port(), datadir=sandbox.root / name)
        self.rest_port = free_port()
        self.config = sandbox.root / f"{name}.patroni.yml"
        self.config.write_text(yaml.safe_dump(self._config(etcd)))
        pg = pwd.getpwnam(PG_USER)
        os.chown(self.config, pg.pw_uid, pg.pw_gid)
        self.process: subprocess.Popen | None = None

    def _config(self, etcd: str) -> dict:
        config = yaml.safe_load((DR_DIR / "patroni.yml").read_text())
        config["name"] = self.name
        config["restapi"] = {"listen": f"127.0.0.1:{self.rest_port}", "connect_address": f"127.0.0.1:{self.rest_port}"}
        del config["kubernetes"]
        config["etcd3"] = {"hosts": etcd}
        dcs = config["bootstrap"]["dcs"]
        dcs.update(ttl=TTL, loop_wait=LOOP_WAIT, retry_timeout=RETRY_TIMEOUT)
        if _patroni_major() < 4:
            dcs["synchronous_mode"] = True  # 3.x reads "quorum" as off; see docs/runbooks/failover.md
        parameters = dcs["postgresql"]["parameters"]
        parameters.update(
            shared_buffers="32MB",
            max_wal_size="512MB",
            wal_keep_size="128MB",
            archive_command=f'{self.sandbox.bindir}/archive-wal.sh "%p" "%f" {self.sandbox.archive}',
        )
        dcs["postgresql"]["recovery_conf"] = {
            "restore_command": f'{self.sandbox.bindir}/restore-wal.sh {self.sandbox.archive} "%f" "%p"'
        }
        config["bootstrap"]["pg_hba"] = [
            "local all all trust",
            "host replication all 127.0.0.1/32 trust",
            "host all all 127.0.0.1/32 trust",
        ]
        postgresql = config["postgresql"]
        postgresql.update(
            listen=f"127.0.0.1:{self.node.port}",
            connect_address=f"127.0.0.1:{self.node.port}",
            data_dir=str(self.node.datadir),
            bin_dir=str(PG_BIN),
            pgpass=str(self.sandbox.root / f"{self.name}.pgpass"),
            parameters={"unix_socket_directories": str(self.sandbox.root / "run")},
        )
        postgresql["basebackup"] = [{"checkpoint": "fast"}]
        postgresql["authentication"] = {
            "superuser": {"username": PG_USER},
            "replication": {"username": PG_USER},
            "rewind": {"username": PG_USER},
        }
        config["watchdog"] = {"mode": "off"}
        config["log"] = {"dir": str(self.sandbox.root / "patroni-logs" / self.name), "level": "INFO"}
        return config

    def start(self) -> None:
        (self.sandbox.root / "patroni-logs" / self.name).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.sandbox.root / "patroni-logs", PG_USER, PG_USER)
        shutil.chown(self.sandbox.root / "patroni-logs" / self.name, PG_USER, PG_USER)
        self.process = _spawn(["patroni", str(self.config)], self.sandbox.root / f"{self.name}.patroni.out")

    def kill9(self) -> None:
        """Lose the whole node: Patroni and PostgreSQL die at once, nothing shuts down cleanly."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.node.kill9()

    def cluster(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/cluster", timeout=2) as response:
            return json.load(response)


def _patroni_major() -> int:
    version = subprocess.run(["patroni", "--version"], capture_output=True, text=True, timeout=30).stdout.split()[-1]
    return int(version.split(".")[0])


def _spawn(argv: list[str], output: Path) -> subprocess.Popen:
    with output.open("w") as log:
        shutil.chown(output, PG_USER, PG_USER)
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=PG_USER if os.geteuid() == 0 else None,
            group=PG_USER if os.geteuid() == 0 else None,
            start_new_session=True,
            env={**os.environ, "PATH": f"{PG_BIN}:{os.environ['PATH']}"},
        )


@pytest.fixture
def patroni_cluster():
    require_drill_host("patroni", "etcd")
    with Sandbox() as sandbox:
        client, peer = free_port(), free_port()
        etcd_dir = sandbox.root / "etcd"
        etcd_dir.mkdir()
        shutil.chown(etcd_dir, PG_USER, PG_USER)
        etcd = _spawn(
            ["etcd", "--name", "e0", "--data-dir", str(etcd_dir),
             "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"e0=http://127.0.0.1:{peer}"],
            sandbox.root / "etcd.out",
        )  # fmt: skip
        members = [Member(sandbox, f"pg{i}", f"127.0.0.1:{client}") for i in range(3)]
        sandbox.nodes.extend(member.node for member in members)
        try:
            members[0].start()
            wait_for(lambda: _role(members[0]) == "leader", timeout=60, what="pg0 to bootstrap as leader")
            for member in members[1:]:
                member.start()
            yield sandbox, members
        finally:
            for member in members:
                if member.process and member.process.poll() is None:
                    os.killpg(member.process.pid, signal.SIGKILL)
                    member.process.wait(10)
            os.killpg(etcd.pid, signal.SIGKILL)
            etcd.wait(10)


def _members(member: Member) -> dict[str, dict]:
    try:
        return {entry["name"]: entry for entry in member.cluster()["members"]}
    except (urllib.error.URLError, OSError, ValueError):
        return {}


def _role(member: Member) -> str | None:
    return _members(member).get(member.name, {}).get("role")


def _replicas_ready(leader: Member) -> bool:
    roles = {entry["role"] for name, entry in _members(leader).items() if name != leader.name}
    streaming = leader.node.scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    return streaming == 2 and bool(roles & {"sync_standby", "quorum_standby"})


def test_patroni_promotes_a_synchronous_replica_on_its_own_and_loses_no_acknowledged_commit(patroni_cluster):
    sandbox, members = patroni_cluster
    pg0 = members[0]
    wait_for(
        lambda: _replicas_ready(pg0),
        timeout=90,
        what="two replicas streaming, at least one synchronous",
    )
    create_orders_table(pg0.node)

    writer = Writer(pg0.node).start()
    time.sleep(LOAD_SECONDS)
    killed_at = time.monotonic()
    pg0.kill9()
    writer.stop()
    acked = writer.acked_ids()
    assert len(acked) > 100, writer.errors[:3]

    survivors = members[1:]

    def new_leader():
        for member in survivors:
            if _role(member) == "leader" and not member.node.in_recovery():
                return member
        return None

    leader = wait_for(new_leader, timeout=TTL * 6, interval=0.2, what="Patroni to elect a new leader")

    def first_write():
        leader.node.query(
            "INSERT INTO orders (client_order_id, symbol, side, quantity, price)"
            " VALUES (9000000001, 'HDFCBANK', 'BUY', 1, 1700)"
        )
        return time.monotonic()

    rto = wait_for(first_write, timeout=60, interval=0.1, what="a write on the new leader") - killed_at
    lost = acked - surviving_ids(leader.node)
    assert not lost, f"{len(lost)} acknowledged commit(s) lost, e.g. {sorted(lost)[:5]}"

    # The old leader's node returns: Patroni rewinds it and it streams from the new leader.
    pg0.node.wait_reaped()
    rejoin_started = time.monotonic()
    pg0.start()
    wait_for(
        lambda: leader.node.query(
            "SELECT 1 FROM pg_stat_replication WHERE application_name = 'pg0' AND state = 'streaming'"
        ),
        timeout=90,
        interval=0.5,
        what="pg0 to rejoin as a streaming replica",
    )
    rejoin_seconds = time.monotonic() - rejoin_started
    patroni_log = (sandbox.root / "patroni-logs" / "pg0" / "patroni.log").read_text()
    assert "pg_rewind exit code=0" in patroni_log, "the old leader came back without pg_rewind"
    wait_for(
        lambda: pg0.node.scalar("SELECT count(*) FROM orders WHERE client_order_id = 9000000001") == 1,
        timeout=30,
        what="pg0 to replay the first order written after the failover",
    )

    record(
        "patroni_failover",
        {
            "patroni_version": subprocess.run(
                ["patroni", "--version"], capture_output=True, text=True, timeout=30
            ).stdout.strip(),
            "synchronous_mode": "quorum" if _patroni_major() >= 4 else "on (one synchronous standby)",
            "ttl_seconds": TTL,
            "acknowledged_commits": len(acked),
            "committed_but_lost": len(lost),
            "new_leader": leader.name,
            "rto_seconds": round(rto, 3),
            "rejoin_seconds": round(rejoin_seconds, 3),
            "rejoined_by": "pg_rewind",
        },
    )
