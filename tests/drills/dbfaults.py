"""What the database drills share: a loopback TCP proxy between the served terminal and PostgreSQL
that can stall (hold every byte, keep every socket open) or be repointed at another server (as a
Kubernetes Service or Patroni's endpoint follows the leader), clients placing paper orders through
the API with an Idempotency-Key each, and the checks made afterwards on the database itself.

The served terminal is ``tests.served.serve`` (gunicorn with uvicorn workers, the production web
tier) given ``DATABASE_URL`` of the proxy; its users, paper accounts and quotes are made by
``bench.orders._world`` in a child process against the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.drills.ledger import Ledger, Tally, orders_for_keys
from tests.served import ROOT, serve

OUT = ROOT / "var" / "drills"


# --- the proxy ------------------------------------------------------------------------------------
class TcpProxy:
    """A TCP proxy on 127.0.0.1 in its own thread and event loop.

    ``stall()`` stops forwarding in both directions: bytes read are held, new connections are
    accepted but not connected upstream, no socket is closed; ``resume()`` forwards everything held.
    ``repoint(port)`` sends new connections to another server and drops the current ones.
    """

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        self._drop_all()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self.connections += 1
        self._writers.add(client_writer)
        await self._flowing.wait()  # a stalled database neither answers nor refuses
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:  # nothing listens there (the primary is dead): refuse, as a Service without endpoints
            self._writers.discard(client_writer)
            client_writer.transport.abort()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer, client_writer),
            self._pipe(upstream_reader, client_writer, upstream_writer),
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter):
        assert self._flowing is not None
        try:
            while chunk := await reader.read(65536):
                await self._flowing.wait()
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in (writer, other):
                self._writers.discard(end)
                end.transport.abort()

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def repoint(self, port: int, host: str = "127.0.0.1") -> None:
        """New connections go to ``host:port``; the current ones are dropped."""

        def switch() -> None:
            self.target = (host, port)
            self._drop_all()

        self._loop.call_soon_threadsafe(switch)


# --- the served terminal --------------------------------------------------------------------------
WORLD = """
import json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from bench.orders import _world
sessions, bodies, _ = _world(int(sys.argv[1]), int(sys.argv[2]))
print(json.dumps({"sessions": sessions, "bodies": bodies}))
"""


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The served terminal's environment: the drill's database (through the proxy) and Redis."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "DATABASE_POOL_SIZE": "10",  # the web tier's pool per process, as in the deployment files
        "LOG_LEVEL": "WARNING",
        "RMS_DEFAULT_OPS_LIMIT": "1000000",  # the governor never binds: this is not its drill
        "HEALTH_QUEUE_AGE_SECONDS": "86400",  # no Celery worker here
        **extra,
    }


def _env(var: Path, database_url: str) -> dict[str, str]:
    """A child process's environment as the served terminal's: its VAR_DIR holds the development
    keys (the secret key signs sessions, the audit keys link the chains)."""
    env = {**os.environ, "DATABASE_URL": database_url, "VAR_DIR": str(var)}
    env.pop("DJANGO_ENV", None)
    return env


def make_world(var: Path, database_url: str, clients: int, accounts_per_client: int) -> tuple[list, list]:
    """Users with sessions and paper accounts (bench/orders.py's) in the given, migrated database."""
    env = _env(var, database_url)
    done = subprocess.run(
        [sys.executable, "-c", WORLD, str(clients), str(accounts_per_client)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"making the drill's users failed:\n{done.stderr[-3000:]}")
    world = json.loads(done.stdout.strip().splitlines()[-1])
    return world["sessions"], world["bodies"]


@contextlib.contextmanager
def served(var: Path, database_url: str) -> Iterator[str]:
    """``tests.served.serve`` against ``database_url`` (migrated by it); yield the base URL."""
    var.mkdir(parents=True, exist_ok=True)
    with serve(var, server="gunicorn", env=server_env(database_url)) as url:
        yield url


# --- the clients ----------------------------------------------------------------------------------
@dataclass
class Answer:
    key: str
    sent_at: float
    answered_at: float
    status: int | None
    code: str  # the error body's code, "" on success, "no body" for an error without JSON
    detail: str = ""


@dataclass
class Load:
    """Client threads placing paper orders through ``POST /api/v1/orders``, each under its own
    Idempotency-Key; an order whose outcome is unknown (no answer, 5xx) is sent again under the same
    key until it is answered, as a careful client does."""

    name: str
    port: int
    sessions: list
    bodies: list
    ledger: Ledger = field(init=False)
    answers: list[Answer] = field(default_factory=list)
    request_timeout: float = 30.0
    retry_pause: float = 0.1
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.name)

    def _headers(self, client: int, key: str) -> dict[str, str]:
        session_id, csrf = self.sessions[client]
        return {
            "Cookie": f"sessionid={session_id}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/json",
            "Referer": f"http://127.0.0.1:{self.port}/",
            "Idempotency-Key": key,
        }

    def _send(self, connection: http.client.HTTPConnection | None, client: int, key: str, body: bytes):
        """One attempt; return (connection to reuse or None, answer)."""
        sent_at = time.monotonic()
        status: int | None = None
        code, detail, payload = "", "", None
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.request_timeout)
            connection.request("POST", "/api/v1/orders", body=body, headers=self._headers(client, key))
            response = connection.getresponse()
            raw = response.read()
            status = response.status
            if response.will_close:
                connection.close()
                connection = None
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            if status >= 300:
                code = str(payload.get("code", "")) if isinstance(payload, dict) else "no body"
                detail = raw[:200].decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            code = "no answer"
            with contextlib.suppress(Exception):
                connection.close()  # type: ignore[union-attr]
            connection = None
        self.ledger.record(key, status, payload if isinstance(payload, dict) else None, detail)
        answer = Answer(key, sent_at, time.monotonic(), status, code, detail)
        with self._lock:
            self.answers.append(answer)
        return connection, answer

    def _client(self, client: int) -> None:
        payloads = [json.dumps(body).encode() for body in self.bodies[client]]
        connection = None
        n = 0
        while not self._stop.is_set():
            key = f"{self.name}-{client}-{n}"
            body = payloads[n % len(payloads)]
            self.ledger.send(key)
            while True:
                connection, answer = self._send(connection, client, key, body)
                if answer.status is not None and answer.status < 500 and answer.status != 408:
                    break
                time.sleep(self.retry_pause)
                if self._stop.is_set() and time.monotonic() > self._hard_stop:
                    break
            n += 1

    def start(self) -> Load:
        self._hard_stop = float("inf")
        for client in range(len(self.sessions)):
            thread = threading.Thread(target=self._client, args=(client,), name=f"client-{client}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, *, settle: float = 30.0) -> None:
        """Stop sending new orders; an order still unanswered is retried for up to ``settle`` s."""
        self._hard_stop = time.monotonic() + settle
        self._stop.set()
        for thread in self._threads:
            thread.join(settle + self.request_timeout + 5)

    def acknowledged_count(self) -> int:
        return len(self.ledger.acknowledged)

    def first_success_after(self, instant: float) -> float | None:
        """When the first order sent at or after ``instant`` was acknowledged (monotonic), or None."""
        with self._lock:
            times = [a.answered_at for a in self.answers if a.sent_at >= instant and a.status is not None
                     and 200 <= a.status < 300]  # fmt: skip
        return min(times) if times else None

    def outcomes(self, since: float = 0.0, until: float = float("inf")) -> Counter:
        """Answers by status and code among those answered between ``since`` and ``until``."""
        with self._lock:
            return Counter(
                f"{a.status or 'none'} {a.code}".strip() for a in self.answers if since <= a.answered_at <= until
            )


# --- the checks afterwards ------------------------------------------------------------------------
@dataclass
class Verdict:
    tally: Tally
    half_written: list[str]
    positions_off: list[str]
    audit: str
    audit_ok: bool
    page_off: list[str]

    def problems(self) -> list[str]:
        found = []
        if self.tally.duplicated or self.tally.lost:
            found.append(self.tally.line())
        found += self.half_written[:5] + self.positions_off[:5] + self.page_off[:5]
        if not self.audit_ok:
            found.append(f"audit chain: {self.audit}")
        return found


def half_written(conn: psycopg.Connection, keys: list[str]) -> list[str]:
    """Orders of the drill not in a final state, or whose trades do not add up to what they filled
    (a paper MARKET order is FILLED or REJECTED within its request)."""
    rows = conn.execute(
        """
        SELECT o.idempotency_key, o.status, o.filled_quantity, coalesce(sum(t.quantity), 0)
        FROM orders_order o LEFT JOIN orders_trade t ON t.order_id = o.id
        WHERE o.idempotency_key = ANY(%s)
        GROUP BY o.id
        """,
        [keys],
    ).fetchall()
    return [
        f"order {key}: {status}, filled {filled}, trades {traded}"
        for key, status, filled, traded in rows
        if status not in ("FILLED", "REJECTED") or filled != traded
    ]


def positions_off(conn: psycopg.Connection) -> list[str]:
    """Positions whose quantities differ from the sum of their trades."""
    rows = conn.execute(
        """
        WITH traded AS (
            SELECT account_id, instrument_id, product,
                   sum(CASE WHEN side = 'BUY' THEN quantity ELSE 0 END) AS bought,
                   sum(CASE WHEN side = 'SELL' THEN quantity ELSE 0 END) AS sold
            FROM orders_trade GROUP BY account_id, instrument_id, product
        )
        SELECT coalesce(p.account_id, t.account_id), coalesce(p.product, t.product),
               p.net_quantity, p.buy_quantity, p.sell_quantity, t.bought, t.sold
        FROM orders_position p
        FULL JOIN traded t USING (account_id, instrument_id, product)
        """
    ).fetchall()
    off = []
    for account, product, net, bought_p, sold_p, bought, sold in rows:
        bought, sold = bought or 0, sold or 0
        if (net or 0, bought_p or 0, sold_p or 0) != (bought - sold, bought, sold):
            off.append(f"account {account} {product}: position {net} ({bought_p}/{sold_p}), trades {bought}/{sold}")
    return off


def verify_audit(var: Path, database_url: str) -> tuple[bool, str]:
    """``manage.py verify_audit`` against the database; return (passed, its last line)."""
    env = _env(var, database_url)
    done = subprocess.run(
        [sys.executable, "manage.py", "verify_audit", "--no-checkpoints", "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip() and "WARNING" not in line]
    return done.returncode == 0, (lines[-1] if lines else f"exit {done.returncode}")


def page_off(load: Load, conn: psycopg.Connection) -> list[str]:
    """What the trader is shown afterwards, through the API (order book and positions of every
    account the drill traded), against the database."""
    off = []
    accounts = sorted({body["account_id"] for bodies in load.bodies for body in bodies})
    owner = {body["account_id"]: client for client, bodies in enumerate(load.bodies) for body in bodies}
    connection = http.client.HTTPConnection("127.0.0.1", load.port, timeout=30)
    try:
        for account in accounts:
            headers = load._headers(owner[account], "")
            headers.pop("Idempotency-Key")
            connection.request("GET", f"/api/v1/accounts/{account}/orders", headers=headers)
            response = connection.getresponse()
            shown = json.loads(response.read())
            if response.status != 200:
                off.append(f"account {account}: order book answered {response.status}")
                continue
            stored = {
                str(row[0]): row[1]
                for row in conn.execute(
                    "SELECT client_order_id, status FROM orders_order WHERE account_id = %s", [account]
                ).fetchall()
            }
            if {o["client_order_id"]: o["status"] for o in shown} != stored:
                off.append(f"account {account}: order book shows {len(shown)} orders, the database holds {len(stored)}")
            connection.request("GET", f"/api/v1/accounts/{account}/positions", headers=headers)
            response = connection.getresponse()
            positions = json.loads(response.read())
            net = dict(
                conn.execute(
                    "SELECT product, net_quantity FROM orders_position WHERE account_id = %s", [account]
                ).fetchall()
            )
            if {p["product"]: p["net_quantity"] for p in positions} != net:
                off.append(f"account {account}: positions show {positions}, the database holds {net}")
            off += _panels_off(connection, headers, account, conn, net)
    finally:
        connection.close()
    return off


ORDER_ROW = re.compile(r'<tr id="order-(\d+)" class="order-row')
POSITION_ROW = re.compile(r'<td class="product">(\w+)</td>\s*<td class="qty num">(-?\d+)</td>')


def _panels_off(connection: http.client.HTTPConnection, headers: dict, account: int, conn, net: dict) -> list[str]:
    """The trading page's order book and positions panels (the HTML the trader reads) against the
    database: every order of the account listed (the book shows the latest 200), every position's
    net quantity."""
    off = []
    pages = {}
    for panel in ("orders", "positions"):
        connection.request("GET", f"/trading/{account}/panels/{panel}/", headers=headers)
        response = connection.getresponse()
        pages[panel] = response.read().decode()
        if response.status != 200:
            off.append(f"account {account}: the {panel} panel answered {response.status}")
            return off
    stored = {row[0] for row in conn.execute("SELECT id FROM orders_order WHERE account_id = %s", [account])}
    shown = {int(found) for found in ORDER_ROW.findall(pages["orders"])}
    if len(stored) <= 200 and shown != stored:
        off.append(
            f"account {account}: the order book page lists {len(shown)} orders, the database holds {len(stored)}"
        )
    rows = {product: int(quantity) for product, quantity in POSITION_ROW.findall(pages["positions"])}
    if rows != net:
        off.append(f"account {account}: the positions page shows {rows}, the database holds {net}")
    return off


def check(load: Load, var: Path, database_url: str) -> Verdict:
    """Everything the drills check afterwards, on the database at ``database_url`` (not through the
    proxy); ``var`` is the served terminal's VAR_DIR."""
    keys = sorted(load.ledger.sent)
    with psycopg.connect(database_url, autocommit=True) as conn:
        tally = load.ledger.tally(orders_for_keys(keys, using=conn))
        half = half_written(conn, keys)
        positions = positions_off(conn)
        page = page_off(load, conn)
    audit_ok, audit = verify_audit(var, database_url)
    return Verdict(tally, half, positions, audit, audit_ok, page)


def write_numbers(name: str, lines: list[str]) -> Path:
    """Print the drill's numbers and keep them in var/drills/<name>.txt."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.txt"
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    print("\n" + text, end="", flush=True)
    return path
