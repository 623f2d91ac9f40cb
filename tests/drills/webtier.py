"""The web tier served for real for the drills: gunicorn with uvicorn workers on the test database
(PostgreSQL) and Redis, bench/orders.py's world of users, sessions and paper accounts, clients that
send orders with an ``Idempotency-Key`` and retry with the same key when the connection fails (as a
correct client does), a ``/ws/user/`` client that reconnects with its last sequence number (as
static/js/terminal.js does), and which worker process holds a given connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.drills.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
DRILL_OUTPUT = ROOT / "var" / "drills"


def report(name: str, lines: list[str]) -> None:
    """Print a drill's numbers and keep them in var/drills/<name>.txt."""
    DRILL_OUTPUT.mkdir(parents=True, exist_ok=True)
    (DRILL_OUTPUT / f"{name}.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        print(line, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def world(clients: int, accounts_per_client: int = 2):
    """Users with signed-in sessions and their paper accounts (bench/orders.py), committed (the test
    must be transactional); return the sessions, each client's order bodies and the users' ids."""
    from accounts.models import User
    from bench.orders import _world

    sessions, bodies, _ = _world(clients, accounts_per_client)
    users = [User.objects.get(username=f"bench{i}").pk for i in range(clients)]
    return sessions, bodies, users


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The served terminal's environment: this test's database and Redis, bench/orders.py's settings."""
    database = connection.settings_dict["NAME"]
    url = urlsplit(os.environ["DATABASE_URL"])
    return {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{database}")),
        "DATABASE_POOL_SIZE": "4",
        "LOG_LEVEL": "WARNING",
        "HEALTH_QUEUE_AGE_SECONDS": "86400",  # no Celery worker here: old queued tasks are not this drill's
        "RMS_DEFAULT_OPS_LIMIT": "1000000",  # the governor runs but never refuses the drill's rate
        **(extra or {}),
    }


class Web:
    """One gunicorn master (its own session: killed as a group when a drill fails)."""

    def __init__(self, name: str, log_dir: Path, *, workers: int = 2, port: int | None = None, env=None) -> None:
        self.name = name
        self.port = port or free_port()
        self.log_path = log_dir / f"{name}.log"
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        command = [gunicorn, "--config", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"]
        command.append("config.asgi:application")
        environ = server_env({"WEB_CONCURRENCY": str(workers), **(env or {})})
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_answering(self.url, self.process, timeout, self.log_path)

    def workers(self) -> list[int]:
        pid = self.process.pid
        try:
            return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM the master (as Kubernetes does) and wait; kill the group if it does not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None


def wait_answering(url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    """Wait until ``url``/api/health answers (any status) while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                raise RuntimeError(f"{url} did not answer:\n{log[-3000:]}") from None
            time.sleep(0.2)


def holder_of(sock: socket.socket, pids: list[int]) -> int | None:
    """The process among ``pids`` that holds the server end of the TCP connection ``sock`` (loopback)."""
    local_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == local_port:
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


# How a request fails on a kept-alive connection the server closed while it was idle.
STALE_CONNECTION = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)


class OrderClient:
    """One trader sending orders on a keep-alive connection, each under a fresh ``Idempotency-Key``. A
    connection error, a 5xx or a 408 is retried with the same key (on a new connection) until the
    order is answered, up to ``attempts`` times; every order is recorded in ``ledger``."""

    def __init__(self, port: int, session: tuple[str, str], bodies: list[dict], ledger: Ledger, *, attempts=30):
        self.port, self.bodies, self.ledger, self.attempts = port, bodies, ledger, attempts
        session_id, csrf = session
        self.headers = {
            "Cookie": f"sessionid={session_id}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/json",
            "Referer": f"http://127.0.0.1:{port}/",
        }
        self.connection: http.client.HTTPConnection | None = None
        self.retries = 0
        self.sent = 0
        self.requests = 0  # HTTP attempts, retries included
        self.answered = 0  # attempts answered with a status the client keeps (2xx, 4xx but 408)
        self.errors: list[str] = []  # attempts that failed: connection errors, 5xx, 408
        self.stale = 0  # requests sent again on a new connection: the kept-alive one had been closed
        self.used = 0  # answers received on the current connection

    def connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.connect()
            self.used = 0
        return self.connection

    def drop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def place(self, body: dict | None = None) -> tuple[str, int | None, dict | None]:
        """Send one order (retrying as above); return its key, the final status and body.

        A keep-alive connection the server closed while it was idle (nginx's old workers close theirs
        when it reloads) fails the next request as it is written or before any answer; as every HTTP
        client does, that request is sent again at once on a new connection: counted in ``stale``,
        neither a request nor a failure (the server never had it; the key makes it safe either way)."""
        key = f"drill-{uuid.uuid4().hex}"
        payload = json.dumps(body or self.bodies[self.sent % len(self.bodies)]).encode()
        self.sent += 1
        self.ledger.send(key)
        reason = ""
        attempt = 0
        while attempt < self.attempts:
            reused = self.connection is not None and self.used > 0
            try:
                connection = self.connect()
                headers = {**self.headers, "Idempotency-Key": key}
                connection.request("POST", "/api/v1/orders", body=payload, headers=headers)
                response = connection.getresponse()
                text = response.read()
                self.used += 1
                if response.will_close:
                    self.drop()
            except (OSError, http.client.HTTPException) as error:
                self.drop()
                if reused and isinstance(error, STALE_CONNECTION):
                    self.stale += 1
                    continue
                attempt += 1
                self.requests += 1
                reason = f"{type(error).__name__}: {error}"
                self.errors.append(reason)
                self._pause(attempt)
                continue
            attempt += 1
            self.requests += 1
            status = response.status
            answer = json.loads(text) if text[:1] == b"{" else None
            if status >= 500 or status == 408:
                reason = f"HTTP {status}"
                self.errors.append(f"{reason} {text[:200]!r}")
                self._pause(attempt)
                continue
            self.answered += 1
            self.ledger.record(key, status, answer)
            return key, status, answer
        self.ledger.fail(key, reason)
        return key, None, None

    def _pause(self, attempt: int) -> None:
        if attempt < self.attempts:
            self.retries += 1
            time.sleep(min(0.05 * 2**attempt, 1.0))

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.place()
        finally:
            self.drop()


ORDER_ROW = re.compile(r'<tr id="order-(\d+)" class="order-row status-([\w-]+)"')


class UserSocket:
    """A page's ``/ws/user/`` socket in a thread: applies what it receives (the latest row of each order,
    as htmx's oob swap does), keeps the last ``{"type": "seq"}`` number, and reconnects with
    ``?since=<it>`` when the connection drops, as static/js/terminal.js does."""

    def __init__(self, url: str, session_id: str, *, since: int | None = None, reconnect_after: float = 0.5) -> None:
        self.url, self.session_id, self.seq, self.reconnect_after = url, session_id, since, reconnect_after
        self.rows: dict[int, str] = {}  # order id -> status class of the row the page shows
        self.seen_at: dict[int, float] = {}  # order id -> when its row first arrived (monotonic)
        self.connects = 0
        self.drops: list[float] = []
        self.reconnected: list[float] = []
        self.socket = None
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="user-socket", daemon=True)

    def start(self) -> UserSocket:
        self._thread.start()
        assert self.opened.wait(20), "the user socket did not open"
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            if self.socket is not None:
                self.socket.close()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            since = "?since=" + ("" if self.seq is None else str(self.seq))
            try:
                ws = connect(
                    self.url.replace("http://", "ws://") + "/ws/user/" + since,
                    additional_headers={"Cookie": f"sessionid={self.session_id}"},
                    origin=self.url,
                    open_timeout=10,
                )
            except Exception:  # the server may be restarting
                self._stop.wait(self.reconnect_after)
                continue
            self.socket = ws
            self.connects += 1
            if self.connects > 1:
                self.reconnected.append(time.monotonic())
            self.opened.set()
            try:
                for message in ws:
                    self._apply(message)
            except ConnectionClosed:
                pass
            except OSError:
                pass
            if not self._stop.is_set():
                self.drops.append(time.monotonic())
                self._stop.wait(self.reconnect_after)

    def _apply(self, message) -> None:
        if not isinstance(message, str):
            return
        if message.startswith("{"):
            frame = json.loads(message)
            if frame.get("type") == "seq":
                self.seq = frame["seq"]
            return
        now = time.monotonic()
        with self._lock:
            for order_id, status in ORDER_ROW.findall(message):
                self.rows[int(order_id)] = status
                self.seen_at.setdefault(int(order_id), now)

    def view(self) -> dict[int, str]:
        with self._lock:
            return dict(self.rows)


@contextlib.contextmanager
def running(clients: list[OrderClient]) -> Iterator[threading.Event]:
    """Run the clients in threads until the block ends."""
    stop = threading.Event()
    threads = [threading.Thread(target=client.run, args=(stop,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def book_truth(user_id: int) -> dict[int, str]:
    """What the order book should show ``user_id``: each of the orders they placed, with its row's
    status class, read from the database now."""
    from orders.models import Order
    from orders.selectors import order_row

    orders = Order.objects.filter(placed_by_id=user_id).select_related("account", "instrument")
    return {order.pk: order_row(order)["status_class"] for order in orders}
