"""Real PostgreSQL 15 clusters for the disaster-recovery drills.

Each drill runs in a `Sandbox`: a directory under /tmp owned by the ``postgres`` OS user, holding the
data directories of the nodes it starts on free loopback ports, a WAL archive, and a copy of the
scripts in deploy/postgres/dr/ (as a deployment installs them in /usr/local/lib/terminal-dr/).
Every node includes the production configuration fragments from deploy/postgres/dr/ and overrides
only what a sandbox must (ports, paths, small buffers). Leaving the sandbox kills every server it
started and removes the directory, whether the drill passed or not (DR_DRILL_KEEP=1 keeps the files).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import psycopg.sql
import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DR_DIR = ROOT / "deploy" / "postgres" / "dr"
PG_BIN = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
REPORT = ROOT / "test-artifacts" / "dr" / "report.json"
PG_USER = "postgres"
ORDERS_DDL = """
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    client_order_id bigint NOT NULL UNIQUE,
    symbol text NOT NULL,
    side text NOT NULL,
    quantity integer NOT NULL,
    price numeric(12, 2) NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def unavailable_reason() -> str | None:
    """Return why the drills cannot run on this machine, or None when they can."""
    missing = [name for name in ("initdb", "pg_ctl", "pg_basebackup", "pg_rewind") if not (PG_BIN / name).exists()]
    if missing:
        return f"PostgreSQL 15 binaries missing in {PG_BIN}: {', '.join(missing)}"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"no {PG_USER!r} OS user to run PostgreSQL as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != PG_USER:
        return f"the drills run PostgreSQL as {PG_USER!r}: run them as root or as {PG_USER!r}"
    return None


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the DR checks must run)")
    pytest.skip(reason)


def require_commands(*commands: str) -> None:
    """Skip unless every command is on PATH; fail instead under CI=true."""
    missing = [command for command in commands if not shutil.which(command)]
    if missing:
        _skip_or_fail(f"not installed: {', '.join(missing)} (make system-packages)")


def require_drill_host(*commands: str) -> None:
    """Skip the drill when this machine cannot run it; fail instead under CI=true, where it must run.

    commands are extra programs the drill needs on PATH (patroni, etcd).
    """
    reason = unavailable_reason()
    if reason:
        _skip_or_fail(reason)
    require_commands(*commands)


def as_postgres(argv: list[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run argv as the postgres OS user; return the finished process (text output captured).

    Raises RuntimeError with the command's output when it fails (and check), or
    subprocess.TimeoutExpired.
    """
    if os.geteuid() == 0:
        argv = ["runuser", "-u", PG_USER, "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll predicate until it returns a truthy value; return that value. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except psycopg.Error:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass(eq=False)
class Node:
    name: str
    port: int
    datadir: Path

    @property
    def logfile(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={dbname} connect_timeout=3"

    def connect(self, **kwargs) -> psycopg.Connection:
        """Return an autocommit connection to this node."""
        return psycopg.connect(self.conninfo(), autocommit=True, **kwargs)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement on a fresh connection; return its rows (empty for no result)."""
        with self.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, sql: str, params: tuple = ()):
        return self.query(sql, params)[0][0]

    def alter_system(self, setting: str, value: str) -> None:
        """ALTER SYSTEM SET one setting (it takes no bind parameters) and reload the configuration."""
        statement = psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(
            psycopg.sql.Identifier(setting), psycopg.sql.Literal(value)
        )
        with self.connect() as conn:
            conn.execute(statement)
            conn.execute("SELECT pg_reload_conf()")

    def start(self, timeout: float = 60) -> None:
        as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", str(int(timeout)),
             "start"],
            timeout=timeout + 5,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"], timeout=60)

    def postmaster_pid(self) -> int | None:
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def kill9(self) -> None:
        """SIGKILL the postmaster and all its children at once: the node is lost, not shut down."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = _children_of(pid)
        os.kill(pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), timeout=10, what=f"{self.name} to die")
        self._killed_pid = pid

    def wait_reaped(self, timeout: float = 30) -> None:
        """Wait until the killed postmaster is gone from the process table (pg_ctl sees a zombie as alive)."""
        pid = getattr(self, "_killed_pid", None)
        if pid is not None:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=timeout, what=f"{self.name} reaped")

    def in_recovery(self) -> bool:
        return bool(self.scalar("SELECT pg_is_in_recovery()"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if ppid == parent:
            children.append(int(entry))
    return children


@dataclass
class Sandbox:
    """A temporary directory of PostgreSQL nodes; use as a context manager."""

    root: Path = field(init=False)
    nodes: list[Node] = field(default_factory=list)

    def __enter__(self) -> Sandbox:
        self.root = Path(tempfile.mkdtemp(prefix="dr-drill-", dir="/tmp"))
        pg = pwd.getpwnam(PG_USER)
        os.chmod(self.root, 0o700)
        (self.root / "archive").mkdir()
        (self.root / "backups").mkdir()
        (self.root / "run").mkdir()  # sockets: never inside a data directory that pg_rewind copies
        bindir = self.root / "bin"
        bindir.mkdir()
        for script in DR_DIR.glob("*.sh"):
            shutil.copy2(script, bindir / script.name)
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, pg.pw_uid, pg.pw_gid)
        return self

    def __exit__(self, *exc) -> None:
        for node in self.nodes:
            with contextlib.suppress(OSError, TimeoutError):
                node.kill9()
        for extra in self.root.glob("*/postmaster.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                os.kill(int(extra.read_text().split("\n", 1)[0]), signal.SIGKILL)
        if os.environ.get("DR_DRILL_KEEP"):  # servers are stopped either way; the files stay for a post-mortem
            print(f"DR_DRILL_KEEP: kept {self.root}")
            return
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def bindir(self) -> Path:
        return self.root / "bin"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def _overrides(self, node: Node) -> str:
        return f"""
# --- sandbox overrides (drill) ---
port = {node.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.root / "run"}'
shared_buffers = 32MB
max_wal_size = 512MB
wal_keep_size = 128MB
archive_command = '{self.bindir}/archive-wal.sh "%p" "%f" {self.archive}'
restore_command = '{self.bindir}/restore-wal.sh {self.archive} "%f" "%p"'
log_connections = off
"""

    def init_primary(self, name: str, *, sync_names: str = "", settings: str = "") -> Node:
        """Create and start a primary using deploy/postgres/dr/postgresql.primary.conf."""
        node = Node(name=name, port=free_port(), datadir=self.root / name)
        as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(node.datadir), "-U", PG_USER, "--auth=trust", "--data-checksums",
             "--no-sync", "--encoding=UTF8", "--locale=C.UTF-8"],
            timeout=120,
        )  # fmt: skip
        conf = node.datadir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(f"\ninclude '{self.root / 'postgresql.primary.conf'}'\n")
            fh.write(self._overrides(node))
            fh.write(f"synchronous_standby_names = '{sync_names}'\n{settings}\n")
        self._install_fragments()
        self.nodes.append(node)
        node.start()
        return node

    def _install_fragments(self) -> None:
        pg = pwd.getpwnam(PG_USER)
        for fragment in ("postgresql.primary.conf", "postgresql.standby.conf"):
            target = self.root / fragment
            if not target.exists():
                shutil.copy2(DR_DIR / fragment, target)
                os.chown(target, pg.pw_uid, pg.pw_gid)

    def clone_standby(self, primary: Node, name: str, *, sync_names: str = "", settings: str = "") -> Node:
        """Clone primary with pg_basebackup (own slot named after the node) and start it streaming.

        sync_names is the synchronous_standby_names this node uses once promoted.
        """
        node = Node(name=name, port=free_port(), datadir=self.root / name)
        as_postgres(
            [str(PG_BIN / "pg_basebackup"), "-d", primary.conninfo(), "-D", str(node.datadir), "-X", "stream",
             "-C", "-S", name, "--checkpoint=fast", "--no-sync"],
            timeout=120,
        )  # fmt: skip
        with (node.datadir / "postgresql.conf").open("a") as fh:
            fh.write(f"\ninclude '{self.root / 'postgresql.standby.conf'}'\n")
            fh.write(self._overrides(node))
            fh.write(f"synchronous_standby_names = '{sync_names}'\n{settings}\n")
        with (node.datadir / "postgresql.auto.conf").open("a") as fh:
            fh.write(self.follow_settings(primary, name))
        (node.datadir / "standby.signal").touch()
        shutil.chown(node.datadir / "standby.signal", PG_USER, PG_USER)
        self.nodes.append(node)
        node.start()
        return node

    @staticmethod
    def follow_settings(upstream: Node, name: str) -> str:
        return (
            f"primary_conninfo = 'host=127.0.0.1 port={upstream.port} user={PG_USER} application_name={name}'\n"
            f"primary_slot_name = '{name}'\n"
        )

    def script(self, name: str, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        """Run one of the deploy/postgres/dr scripts as the postgres user; return the finished process."""
        return as_postgres([str(self.bindir / name), *args], timeout=timeout, check=check)


def create_orders_table(node: Node) -> None:
    node.query(ORDERS_DDL)


class Writer:
    """Order-like inserts from several client threads, each commit recorded once acknowledged.

    A commit counts as acknowledged only when the server returned success without a warning; an
    insert that raised, or whose commit came back with a warning (a cancelled synchronous-replication
    wait), is "in doubt": it may or may not survive a failover, and the client must not report it
    as done.
    """

    def __init__(self, node: Node, *, threads: int = 4) -> None:
        self.node = node
        self.threads = threads
        # (client_order_id, wall-clock ack time, WAL insert position just after the row, as bytes)
        self.acked: list[tuple[int, float, int]] = []
        self.in_doubt: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self.started_at = 0.0
        self.started_wall = 0.0
        self.stopped_at = 0.0

    def _run(self, worker: int) -> None:
        notices: list[str] = []
        try:
            conn = self.node.connect()
        except psycopg.Error as exc:
            self.errors.append(str(exc))
            return
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        sequence = 0
        with conn:
            while not self._stop.is_set():
                sequence += 1
                client_order_id = worker * 1_000_000_000 + sequence
                notices.clear()
                try:
                    position = conn.execute(
                        "INSERT INTO orders (client_order_id, symbol, side, quantity, price)"
                        " VALUES (%s, 'NIFTY25NOVFUT', 'BUY', 75, 24150.25)"
                        " RETURNING pg_current_wal_insert_lsn()::text",
                        (client_order_id,),
                    ).fetchone()[0]
                except psycopg.Error as exc:
                    with self._lock:
                        self.in_doubt.append(client_order_id)
                        self.errors.append(type(exc).__name__)
                    return
                with self._lock:
                    if notices:
                        self.in_doubt.append(client_order_id)
                    else:
                        self.acked.append((client_order_id, time.time(), lsn_bytes(position)))

    def start(self) -> Writer:
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        for worker in range(1, self.threads + 1):
            thread = threading.Thread(target=self._run, args=(worker,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout)
        self.stopped_at = time.monotonic()

    def acked_ids(self) -> set[int]:
        with self._lock:
            return {client_order_id for client_order_id, _, _ in self.acked}


def lsn_bytes(lsn: str) -> int:
    """Return a WAL position such as '0/3000148' as a byte offset."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def surviving_ids(node: Node) -> set[int]:
    return {row[0] for row in node.query("SELECT client_order_id FROM orders")}


def record(drill: str, numbers: dict) -> None:
    """Merge one drill's measured numbers into test-artifacts/dr/report.json and print them."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[drill] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **numbers}
    REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\nDR drill {drill}: " + ", ".join(f"{key}={value}" for key, value in numbers.items()))
