"""The soak: a trading day under load, then the checks a trader's worst day must pass.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/soak.py [--minutes 10] [--accounts 100]
        [--ws-clients 1000] [--deployments 20] [--load 0.8] [--feed-rate 200] [--workers N]

Everything runs on loopback in a throwaway database (test_<name>_soak): the production web server
(gunicorn with uvicorn workers, bench/orders.py's ``_start_server``), the local Kite server
(tests/kite/fake_kite.py, run in this process, answering after --broker-latency seconds), a Celery
worker (the Kite postbacks' inbox drain), the market-data feed (``run_feed --source sim``, its own
process), a tick runner (``strategies.runner``, as ``run_strategies`` runs it) holding --deployments
tick-driven deployments, each on its own paper account, and the clients:

- orders: bench/orders.py's world (one user per client, each with paper and Kite accounts, --accounts
  in all, half of each) and its client processes. It first measures the capacity as bench/orders.py
  does (paper orders back to back, --capacity-seconds), then sends --load of that rate for --minutes,
  MARKET buys and sells over every account, each order under its own ``Idempotency-Key`` and recorded
  in the drills' ledger (tests/drills/ledger.py). The local Kite server fills each order at once and
  this process sends Kite's postback for it, so Kite orders end FILLED with trades and positions too.
- websockets: --ws-clients clients (the ``websockets`` package, all in one asyncio process), each
  signed in as one of the order users, with two sockets: ``/ws/ticks/`` subscribed to --subs
  instruments and the user's ``/ws/user/`` stream, whose order rows it reads (order id and status).
  The user stream speaks the push journal as the page does (``infra/push.py``): opened with
  ``?since=``, it keeps the number the server sends and reconnects with it, counts the replays the
  server sends (the current state of changes the socket missed), and on a resync reloads the order
  book of each of its user's accounts and takes those rows as the orders' current state.

While it runs it samples, every --sample-seconds, the RSS of the web worker processes, the database's
open connections (pg_stat_activity) and the lowest margin blocked and funds available of any account.
At the end it checks and prints one ``verdict`` line each (ok or FAILED):
- orders: every acknowledged order is in the database exactly once, and at the broker (the paper
  exchange's book, the Kite server's) once (the ledger's line: sent, acknowledged, found, duplicated, lost);
- positions: every position equals the sum of its trades (net, bought, sold), and every order's filled
  quantity the sum of its trades;
- margin: never negative, sampled during the run and at the end;
- audit: the audit chains verify (``audit.verification.verify_trail``, as ``verify_audit`` does);
- websockets: every client connected and stayed connected; per order its statuses never went
  backwards; the last status each client saw of each order is the database's final one, it saw
  every order of its user placed while it was connected, and none of another user's; a resync's
  reload of the books was never refused. A client may skip an order's intermediate statuses (a push
  shows an order's latest state, and so does a replay or a resync), never its final one; the figures
  say how many final states each way showed (push, replay, resync);
- memory, connections: flat (the mean of the last quarter of samples against the first: FAILED only
  on clear growth, more than half again and more than --rss-margin-mb / --connections-margin).
and the figures: orders/s, p50 and p99 latency, ws clients and messages, ticks, strategy orders.
The same lines go to var/drills/soak.txt. It exits 1 when a verdict failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

STRATEGY = "soak_tick_flip"
FLIP_SECONDS = 5.0  # a deployment buys one, or closes it, at most this often (in tick time)
ORDER_ROW = re.compile(r'<tr id="order-(\d+)" class="order-row status-([a-z_]+)"')
RANK = {"pending": 0, "open": 1, "trigger_pending": 1, "unknown": 1, "partially_filled": 2}
TERMINAL = {"filled", "cancelled", "rejected"}
CONNECT_ATTEMPTS = 3
FINAL_CLOSES = {4401, 4429}  # the page does not reconnect after these (static/js/terminal.js)
REPORT = ROOT / "var" / "drills" / "soak.txt"
LOG = ROOT / "var" / "drills" / "soak-processes.log"


# --- the strategy the deployments run --------------------------------------------------------------
def _register_strategy() -> None:
    from strategies.contract import Context, Params, Strategy, Tick
    from strategies.registry import register, registered

    class OneInstrument(Params):
        instrument_id: int

    class TickFlip(Strategy):
        """Tick-driven: buys one when flat, closes when long, at most every FLIP_SECONDS of tick time."""

        name = STRATEGY
        Params = OneInstrument
        drive = "tick"

        def instruments(self, ctx: Context) -> list[int]:
            return [self.params.instrument_id]

        def on_tick(self, ctx: Context, tick: Tick) -> None:
            at = tick.ts.timestamp()
            if at - float(ctx.state.get("at", "0")) < FLIP_SECONDS:
                return
            ctx.state["at"] = str(at)
            if ctx.position("long"):
                ctx.close("long", reason="soak")
            else:
                ctx.buy("long", tick.instrument_id, 1, reason="soak")

    if STRATEGY not in registered():
        register(TickFlip)


def _run_strategies(database_url: str, stop) -> None:
    """The tick runner (``strategies.runner`` as ``run_strategies`` runs it) until ``stop`` is set; told
    it is in session (bench/strategies.py's MARKET_NOW), whatever the wall clock says."""
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    _register_strategy()
    from bench.strategies import MARKET_NOW
    from infra import lifespan
    from strategies.runner import TickRunner, listen_redis

    class InSession(TickRunner):
        def handle(self, quotes, *, now=None):
            super().handle(quotes, now=MARKET_NOW)

    runner = InSession(owner="soak")
    stopping = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), stopping.set()), daemon=True).start()
    reader = threading.Thread(target=listen_redis, args=(runner, stopping), daemon=True)
    reader.start()
    runner.run(stopping)
    reader.join(5)
    lifespan.drain()


# --- the websocket clients (their own process, no Django) -------------------------------------------
class _Seen:
    """What one client saw."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.connected_at: float | None = None
        self.dropped = ""  # why a socket ended before the run did
        self.retries = 0  # handshakes that failed and were tried again
        self.tick_messages = self.quotes = self.user_messages = 0
        self.last: dict[int, str] = {}  # order id -> the last status seen
        self.backwards: list[str] = []
        self.seq: int | None = None  # the user stream's number up to which it holds every change
        self.reconnects = 0  # user streams that ended and were reconnected with ?since=
        self.replays = self.replayed = 0  # replays the server sent, and the changes they covered
        self.resyncs = self.resync_rows = self.resync_errors = 0  # resyncs, order books reloaded, refused
        self.resync_books: Callable[[], Awaitable[None]] | None = None
        self.via: dict[int, str] = {}  # order id -> how its last status was shown: push, replay, resync
        self.replaying = False  # the next fragments are a replay's


def _saw_order(seen: _Seen, order_id: int, status: str, via: str = "push") -> None:
    """A row of the order: ``via`` a push, a replay (the current state of changes the socket missed) or
    a resync's reload of the books."""
    before = seen.last.get(order_id)
    if before is not None:
        if before in TERMINAL:
            went_back = status != before
        else:
            went_back = status not in TERMINAL and RANK.get(status, 1) < RANK.get(before, 1)
        if went_back:
            seen.backwards.append(f"order {order_id}: {before} then {status}")
    if status != before:
        seen.via[order_id] = via
    seen.last[order_id] = status


async def _ws_client(spec: dict, index: int, seen: _Seen, gate: asyncio.Semaphore, stop: asyncio.Event) -> None:
    import websockets

    cookie = spec["clients"][index][0]
    port = spec["port"]
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    subs = spec["instruments"][index % len(spec["instruments"]) :] + spec["instruments"]
    options = {"ping_interval": None, "open_timeout": 30}
    ticks = user = None
    for attempt in range(CONNECT_ATTEMPTS):  # as a page's socket reconnects after a failed handshake
        try:
            async with gate:
                ticks = await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/ticks/?format=json", **options, additional_headers=headers
                )
                # As the page does: the user stream speaks the journal's protocol (an empty ``since``: from
                # now on); the first frame says where the client stands, and every order placed after it
                # is numbered after that.
                user = await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/user/?since=", **options, additional_headers=headers
                )
                await _user_frame(seen, await asyncio.wait_for(user.recv(), 30))
                if seen.seq is None:
                    raise ConnectionError("the user socket sent no sequence number first")
                await ticks.send(json.dumps({"action": "subscribe", "instruments": subs[: spec["subs"]]}))
            seen.connected_at = time.time()
            break
        except Exception as exc:
            seen.retries += 1
            for socket in (ticks, user):
                if socket is not None:
                    await socket.close()
            ticks = user = None
            seen.seq = None
            if attempt == CONNECT_ATTEMPTS - 1:
                seen.dropped = f"connect: {type(exc).__name__} {exc}"[:200]
                return
            await asyncio.sleep(1 + attempt)
    assert ticks is not None and user is not None
    seen.resync_books = lambda: _resync(spec, index, seen)

    async def read_ticks() -> None:
        async for raw in ticks:
            message = json.loads(raw)
            if message.get("type") == "quotes":
                seen.tick_messages += 1
                seen.quotes += len(message["quotes"])
            elif message.get("type") == "error":
                seen.dropped = seen.dropped or f"ticks error: {raw[:200]}"

    async def read_user() -> None:
        """The user stream, reconnected with ``?since=`` as the page reconnects it when it ends."""
        nonlocal user
        while True:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in user:
                    await _user_frame(seen, raw)
            if stop.is_set() or user.close_code in FINAL_CLOSES:
                return
            seen.reconnects += 1
            for attempt in range(CONNECT_ATTEMPTS):
                await asyncio.sleep(0.5 * (attempt + 1))
                try:
                    user = await websockets.connect(
                        f"ws://127.0.0.1:{port}/ws/user/?since={seen.seq}", **options, additional_headers=headers
                    )
                    break
                except Exception:
                    seen.retries += 1
            else:
                return

    readers = [asyncio.create_task(read_ticks()), asyncio.create_task(read_user())]
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*readers, stopped], return_when=asyncio.FIRST_COMPLETED)
    if stopped not in done:  # a socket ended before the run did
        ended = ticks if readers[0] in done else user
        seen.dropped = seen.dropped or f"closed {ended.close_code} {ended.close_reason}"[:200]
        await stopped
    for task in readers:
        task.cancel()
    await ticks.close()
    await user.close()


async def _user_frame(seen: _Seen, raw: str | bytes) -> None:
    """One frame of the user stream, handled as the page handles it (static/js/terminal.js): fragments
    are applied (their order rows read), ``seq`` is kept for the next connection, ``replay`` announces
    the current state of changes the socket missed, ``resync`` reloads the books."""
    text = raw if isinstance(raw, str) else raw.decode()
    seen.user_messages += 1
    if text.startswith("{"):
        frame = json.loads(text)
        kind = frame.get("type")
        if kind == "seq" and isinstance(frame.get("seq"), int):
            seen.seq = frame["seq"]
        elif kind == "replay":
            seen.replaying = True
            seen.replays += 1
            seen.replayed += int(frame.get("changes", 0))
        elif kind == "resync":
            seen.resyncs += 1
            if seen.resync_books is not None:
                await seen.resync_books()
        return
    via, seen.replaying = ("replay" if seen.replaying else "push"), False
    for order_id, status in ORDER_ROW.findall(text):
        _saw_order(seen, int(order_id), status, via)


async def _resync(spec: dict, index: int, seen: _Seen) -> None:
    """What the page does on ``resync``: reload its order books (each of the user's accounts' order
    panel, as the page reloads the one it shows) and take their rows as the orders' current state."""
    import httpx

    cookie, user_id = spec["clients"][index]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{spec['port']}", cookies={"sessionid": cookie}, timeout=60
    ) as http:
        for account_id in spec["accounts"][str(user_id)]:
            answer = await http.get(f"/trading/{account_id}/panels/orders/")
            if answer.status_code != 200:
                seen.resync_errors += 1
                continue
            seen.resync_rows += 1
            for order_id, status in ORDER_ROW.findall(answer.text):
                _saw_order(seen, int(order_id), status, "resync")


async def _ws_clients(spec: dict) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    seen = [_Seen(user_id) for _, user_id in spec["clients"]]
    gate = asyncio.Semaphore(25)  # handshakes at a time
    tasks = [asyncio.create_task(_ws_client(spec, i, s, gate, stop)) for i, s in enumerate(seen)]
    while sum(1 for s in seen if s.connected_at or s.dropped) < len(seen):
        await asyncio.sleep(0.2)
    print(f"ready {sum(1 for s in seen if s.connected_at)}", flush=True)
    await asyncio.gather(*tasks)
    return _ws_summary(spec, seen)


def _ws_summary(spec: dict, seen: list[_Seen]) -> dict:
    """Each client's view against the database's final state of its user's orders."""
    import psycopg

    users = sorted({s.user_id for s in seen})
    with psycopg.connect(spec["database_url"]) as db:
        rows = db.execute(
            "SELECT id, lower(status), placed_by_id, extract(epoch FROM created_at) FROM orders_order "
            "WHERE placed_by_id = ANY(%s)",
            [users],
        ).fetchall()
    final = {pk: status for pk, status, _, _ in rows}
    owner = {pk: user for pk, _, user, _ in rows}
    placed: dict[int, list[tuple[int, float]]] = {}
    for pk, _, user, created in rows:
        placed.setdefault(user, []).append((pk, float(created)))
    summary = Counter()
    examples: dict[str, list[str]] = {}  # a few of each kind of problem

    def example(kind: str, text: str) -> None:
        if len(examples.setdefault(kind, [])) < 3:
            examples[kind].append(text)

    for s in seen:
        summary["clients"] += 1
        summary["connected"] += bool(s.connected_at)
        summary["dropped"] += bool(s.dropped)
        summary["retries"] += s.retries
        summary["tick_messages"] += s.tick_messages
        summary["quotes"] += s.quotes
        summary["user_messages"] += s.user_messages
        summary["orders_seen"] += len(s.last)
        for name in ("reconnects", "replays", "replayed", "resyncs", "resync_rows", "resync_errors"):
            summary[name] += getattr(s, name)
        summary["backwards"] += len(s.backwards)
        for text in s.backwards[:3]:
            example("backwards", text)
        if s.dropped:
            example("dropped", f"client of user {s.user_id}: {s.dropped}")
        for order_id, status in s.last.items():
            if owner.get(order_id) != s.user_id:
                summary["foreign"] += 1
                example("foreign", f"client of user {s.user_id} saw order {order_id} of user {owner.get(order_id)}")
            elif final[order_id] == status:
                summary[f"final_by_{s.via[order_id]}"] += 1
            else:
                summary["inconsistent"] += 1
                example("inconsistent", f"order {order_id}: last seen {status}, in the database {final[order_id]}")
        if s.connected_at:
            missed = [pk for pk, created in placed.get(s.user_id, []) if created > s.connected_at and pk not in s.last]
            summary["missed"] += len(missed)
            for pk in missed[:3]:
                example("missed", f"client of user {s.user_id} never saw order {pk}")
    return {**summary, "examples": [text for texts in examples.values() for text in texts]}


def _ws_main(spec_path: str) -> None:
    import uvloop

    spec = json.loads(Path(spec_path).read_text())
    result = uvloop.run(_ws_clients(spec))
    print("result " + json.dumps(result), flush=True)


# --- during the run -----------------------------------------------------------------------------------
class _Sampler(threading.Thread):
    """Every ``every`` seconds: the web workers' RSS, the database's connections, the lowest margins."""

    def __init__(self, database_url: str, database: str, server_pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.database_url, self.database, self.server_pid, self.every = database_url, database, server_pid, every
        self.rss: list[float] = []
        self.connections: list[int] = []
        self.margins: list[tuple[Decimal, Decimal, Decimal]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as db:
            while not self.stopping.wait(self.every):
                self.sample(db)

    def sample(self, db) -> tuple[Decimal, Decimal, Decimal]:
        self.rss.append(_workers_rss_mb(self.server_pid))
        self.connections.append(
            db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.database]).fetchone()[0]
        )
        margins = _margins(db)
        self.margins.append(margins)
        return margins


def _workers_rss_mb(server_pid: int) -> float:
    total = 0
    for pid in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total / 1024


def _margins(db) -> tuple[Decimal, Decimal, Decimal]:
    """The lowest margin blocked of any account and of any position, and the lowest funds available."""
    funds = db.execute(
        "SELECT coalesce(min(margin_blocked), 0), coalesce(min(opening_balance + realised_pnl - margin_blocked), 0) "
        "FROM orders_funds"
    ).fetchone()
    position = db.execute("SELECT coalesce(min(margin_blocked), 0) FROM orders_position").fetchone()[0]
    return funds[0], position, funds[1]


class _Postbacks(threading.Thread):
    """Kite's postbacks: each order the local Kite server filled is posted to the terminal once, as Kite
    would (its account found by the order's broker id; retried until the terminal has recorded that id),
    several at a time, as Kite sends each postback as a request of its own."""

    SENDERS = 8

    def __init__(self, fake, port: int, database_url: str) -> None:
        super().__init__(daemon=True)
        self.fake, self.port, self.database_url = fake, port, database_url
        self.sent: set[str] = set()  # handed to a sender
        self.refused = Counter()
        self.stopping = threading.Event()
        self._local = threading.local()

    def run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import psycopg

        with ThreadPoolExecutor(self.SENDERS) as senders, psycopg.connect(self.database_url, autocommit=True) as db:
            while not self.stopping.wait(0.2):
                for pk, client_code in self.due(db):
                    self.sent.add(pk)
                    senders.submit(self.send, pk, client_code)

    def due(self, db) -> list[tuple[str, str]]:
        with self.fake._lock:
            orders = self.fake.orders.items()
            due = [pk for pk, order in orders if order["status"] == "COMPLETE" and pk not in self.sent]
        if not due:
            return []
        return db.execute(  # the orders the terminal has recorded the id of
            "SELECT o.broker_order_id, a.client_code FROM orders_order o "
            "JOIN brokers_brokeraccount a ON a.id = o.account_id WHERE o.broker_order_id = ANY(%s)",
            [due],
        ).fetchall()

    def send(self, pk: str, client_code: str) -> None:
        import http.client

        body = self.fake.postback(pk, user_id=client_code)
        for _ in range(3):
            web = getattr(self._local, "web", None) or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self._local.web = web
            try:
                web.request("POST", "/brokers/kite/postback/", body=body, headers={"Content-Type": "application/json"})
                answer = web.getresponse()
                answer.read()
            except (OSError, http.client.HTTPException):
                web.close()
                self._local.web = None
                continue
            if answer.status != 200:
                self.refused[answer.status] += 1
            return
        self.refused["no answer"] += 1


# --- the checks ---------------------------------------------------------------------------------------
def _positions_check(db) -> tuple[int, list[str]]:
    """Positions against the sum of their trades, and orders' filled quantities against theirs."""
    trades = {
        (account, instrument, product): (bought, sold)
        for account, instrument, product, bought, sold in db.execute(
            "SELECT account_id, instrument_id, product, sum(quantity) FILTER (WHERE side = 'BUY'), "
            "sum(quantity) FILTER (WHERE side = 'SELL') FROM orders_trade GROUP BY 1, 2, 3"
        ).fetchall()
    }
    problems = []
    positions = db.execute(
        "SELECT account_id, instrument_id, product, net_quantity, buy_quantity, sell_quantity FROM orders_position"
    ).fetchall()
    for account, instrument, product, net, bought, sold in positions:
        b, s = (int(x or 0) for x in trades.pop((account, instrument, product), (0, 0)))
        if (net, bought, sold) != (b - s, b, s):
            problems.append(
                f"account {account} instrument {instrument} {product}: position net {net} bought {bought} sold "
                f"{sold}, trades bought {b} sold {s}"
            )
    problems += [f"account {a} instrument {i} {p}: trades {t} and no position" for (a, i, p), t in trades.items()]
    for order_id, filled, traded in db.execute(
        "SELECT o.id, o.filled_quantity, coalesce(t.q, 0) FROM orders_order o LEFT JOIN "
        "(SELECT order_id, sum(quantity) q FROM orders_trade GROUP BY 1) t ON t.order_id = o.id "
        "WHERE o.filled_quantity <> coalesce(t.q, 0)"
    ).fetchall():
        problems.append(f"order {order_id}: filled {filled}, trades {traded}")
    return len(positions), problems


def _settle(database_url: str, seconds: float) -> tuple[float, int]:
    """Wait until no order is working (at most ``seconds``); return how long it took and how many still are."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as db:
        while True:
            live = db.execute(
                "SELECT count(*) FROM orders_order WHERE status IN "
                "('PENDING', 'OPEN', 'TRIGGER_PENDING', 'PARTIALLY_FILLED', 'UNKNOWN')"
            ).fetchone()[0]
            waited = time.monotonic() - started
            if not live or waited > seconds:
                return waited, live
            time.sleep(0.5)


def _flat(samples: list[float], margin: float) -> tuple[float, float, bool]:
    """The mean of the first and of the last quarter of ``samples``, and whether they show no clear growth."""
    quarter = max(1, len(samples) // 4)
    first, last = statistics.mean(samples[:quarter]), statistics.mean(samples[-quarter:])
    return first, last, not (last > first * 1.5 and last - first > margin)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "FAILED"


# --- the soak -----------------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--ws-clients":
        _ws_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load lasts")
    parser.add_argument("--accounts", type=int, default=100, help="order accounts, half paper, half Kite")
    parser.add_argument("--accounts-per-client", type=int, default=2, help="paper (and as many Kite) per client")
    parser.add_argument("--ws-clients", type=int, default=1000)
    parser.add_argument("--subs", type=int, default=5, help="instruments each websocket client subscribes to")
    parser.add_argument("--deployments", type=int, default=20, help="tick-driven strategy deployments")
    parser.add_argument("--load", type=float, default=0.8, help="order rate as a share of the measured capacity")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument("--feed-rate", type=int, default=200, help="simulated quotes a second")
    parser.add_argument("--broker-latency", type=float, default=0.05, help="seconds the Kite server takes")
    parser.add_argument("--workers", type=int, default=None, help="web worker processes (default WEB_CONCURRENCY)")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--connections", type=int, default=32, help="order clients' connections (one order in flight each)"
    )
    parser.add_argument("--worker-threads", type=int, default=4, help="the Celery worker's threads")
    parser.add_argument("--settle-seconds", type=float, default=120.0, help="at most this long for orders to end")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--rss-margin-mb", type=float, default=200.0, help="growth of all workers' RSS allowed")
    parser.add_argument("--connections-margin", type=int, default=20)
    parser.add_argument("--keep-database", action="store_true", help="leave the database for a look afterwards")
    args = parser.parse_args()
    if args.accounts < 2 * args.accounts_per_client:
        parser.error("--accounts must be at least twice --accounts-per-client")

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        sys.exit("bench/soak.py needs DATABASE_URL (PostgreSQL) and REDIS_URL: its servers are processes.")
    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"test_{original}_soak"  # its own, never a test run's
    database = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    lines: list[str] = []
    ok = False
    try:
        ok = _soak(args, database, lines)
    finally:
        connection.close()
        if args.keep_database:
            print(f"kept the database {database}", flush=True)
        else:
            connection.creation.destroy_test_db(original, verbosity=0)
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text("\n".join(lines) + "\n")
    sys.exit(0 if ok else 1)


def _soak(args, database: str, lines: list[str]) -> bool:
    import psycopg
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections

    from bench.orders import _measure, _start_server, _world
    from bench.strategies import _database_url
    from bench.strategies import _world as _strategy_world
    from tests.drills.ledger import Ledger, orders_for_keys, paper_counts_by_tag
    from tests.kite.fake_kite import FakeKite

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    _register_strategy()
    database_url = _database_url(database)
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    per_client = args.accounts_per_client
    clients = args.accounts // (2 * per_client)
    full = (args.minutes, args.accounts, args.ws_clients, args.deployments) >= (10, 100, 1000, 20)
    say(
        f"size: {'full' if full else 'reduced'}: {args.minutes:g} min, {clients * per_client * 2} accounts "
        f"({clients} users, each {per_client} paper and {per_client} Kite), {args.ws_clients} websocket clients "
        f"(2 sockets each), {args.deployments} tick-driven deployments, feed {args.feed_rate} quotes/s; "
        f"{os.cpu_count()} cores, database {database}"
    )
    fake = FakeKite(latency=args.broker_latency).start()
    env["KITE_API_ROOT"] = fake.url  # the worker reads Kite's book too (reconciliation after a postback)
    processes: list[subprocess.Popen] = []
    server = runner = None
    stop_runner = multiprocessing.get_context("spawn").Event()
    sampler = postbacks = None
    spec_file = None
    try:
        sessions, paper, kite = _world(clients, per_client, kite=True, own_books=True)
        mixed = [[order for pair in zip(p, k, strict=True) for order in pair] for p, k in zip(paper, kite, strict=True)]
        # The connections, spread over the users: several orders of one user may be in flight at once.
        n = max(args.connections, clients)
        conns, mixed_n = ([x[i % clients] for i in range(n)] for x in (sessions, mixed))
        user_ids = [
            get_user_model().objects.get(username=f"bench{i}").pk for i in range(clients)
        ]  # _world's users, in order
        instrument_ids, _, deployment_ids = _strategy_world(0, args.deployments, tick_kind=STRATEGY)
        close_old_connections()
        from bench.orders import _free_port

        port = _free_port()
        per_user = math.ceil(args.ws_clients / clients)
        server, workers = _start_server(
            port,
            database,
            args.workers,
            {"KITE_API_ROOT": fake.url, "WEBSOCKET_MAX_PER_USER": str(2 * per_user + 4)},
        )
        say(f"server: gunicorn with {workers} uvicorn workers on 127.0.0.1:{port}; Kite server {fake.url}")
        procs = min(args.client_processes, n)

        worker_cmd = [sys.executable, "-m", "celery", "--app", "config", "worker", "--pool", "threads"]
        worker_cmd += ["--concurrency", str(args.worker_threads), "--queues", "orders"]
        worker_cmd += ["--without-heartbeat", "--without-mingle"]
        worker_cmd += ["--without-gossip", "--loglevel", "WARNING"]
        feed_cmd = [sys.executable, "manage.py", "run_feed", "--source", "sim", "--rate", str(args.feed_rate)]
        feed_cmd += ["--seed", "1", "--metrics-port", "0"]
        LOG.parent.mkdir(parents=True, exist_ok=True)
        with LOG.open("w") as log:  # the worker's and the feed's own logs
            for command in (worker_cmd, feed_cmd):
                processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log))
        runner = multiprocessing.get_context("spawn").Process(
            target=_run_strategies, args=(database_url, stop_runner), daemon=True
        )
        runner.start()

        spec = {
            "port": port,
            "database_url": database_url,
            "clients": [(sessions[i % clients][0], user_ids[i % clients]) for i in range(args.ws_clients)],
            "accounts": {str(user_ids[i]): sorted({body["account_id"] for body in mixed[i]}) for i in range(clients)},
            "instruments": instrument_ids,
            "subs": args.subs,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(spec, handle)
            spec_file = handle.name
        ws = subprocess.Popen(
            [sys.executable, __file__, "--ws-clients", spec_file], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        processes.append(ws)
        ready = ws.stdout.readline().strip()
        say(f"websocket clients: {ready.removeprefix('ready ')} of {args.ws_clients} connected")

        sampler = _Sampler(database_url, database, server.pid, args.sample_seconds)
        sampler.start()
        postbacks = _Postbacks(fake, port, database_url)
        postbacks.start()
        # The capacity, as bench/orders.py measures it, with the rest of the day running (the feed, the
        # sockets, the strategies, the worker); warm-ups first: a Kite account's first order reads its funds.
        _measure(port, sessions, "/api/v1/orders", paper, 1.0, procs)
        _measure(port, sessions, "/api/v1/orders", kite, 1.0 + 2 * per_client * args.broker_latency, procs)
        capacity = _measure(port, conns, "/api/v1/orders", mixed_n, args.capacity_seconds, procs)
        target = args.load * capacity["rate"]
        say(
            f"capacity: {capacity['rate']:.1f} orders/s (the soak's orders, half paper, half Kite) at {n} connections "
            f"back to back, the rest of the day running (p50 {capacity['p50']:.1f} ms, p99 {capacity['p99']:.1f} ms, "
            f"{capacity['errors']} errors); "
            f"the soak sends {args.load:.0%} of it: {target:.1f} orders/s"
        )

        seconds = args.minutes * 60
        load = _measure(port, conns, "/api/v1/orders", mixed_n, seconds, procs, pace=n / target, keys="soak")
        settled, live = _settle(database_url, args.settle_seconds)
        time.sleep(3)  # the last pushes
        postbacks.stopping.set()
        postbacks.join(30)
        sampler.stopping.set()
        sampler.join(30)
        stop_runner.set()
        runner.join(30)
        ws.send_signal(signal.SIGTERM)
        out, _ = ws.communicate(timeout=300)
        result_line = [line for line in out.splitlines() if line.startswith("result ")]
        ws_result = json.loads(result_line[-1].removeprefix("result ")) if result_line else {}

        ledger = Ledger("soak")
        for key, status, order_id, _ in load["answers"]:
            ledger.send(key)
            ledger.record(key, status, {"client_order_id": order_id} if status else None, reason=order_id)
        with psycopg.connect(database_url, autocommit=True) as db:
            rows = orders_for_keys(ledger.sent, using=db)
            with fake._lock:
                at_kite = Counter(order["tag"] for order in fake.orders.values())
            broker = {**paper_counts_by_tag([r.broker_tag for r in rows], using=db), **at_kite}
            tally = ledger.tally(rows, broker)
            final_margins = sampler.sample(db)
            positions, position_problems = _positions_check(db)
            by_status = dict(db.execute("SELECT status, count(*) FROM orders_order GROUP BY 1").fetchall())
            fill_lag = db.execute(
                "SELECT a.broker, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY s) FROM (SELECT o.account_id, "
                "extract(epoch FROM min(e.created_at) - o.created_at) s FROM orders_order o "
                "JOIN orders_orderevent e ON e.order_id = o.id AND e.to_status = 'FILLED' GROUP BY o.id) f "
                "JOIN brokers_brokeraccount a ON a.id = f.account_id GROUP BY 1 ORDER BY 1"
            ).fetchall()
            strategy_orders = db.execute(
                "SELECT count(*) FROM orders_order o JOIN strategies_deploymentaccount d ON d.account_id = o.account_id"
            ).fetchone()[0]
        from audit.verification import verify_trail

        audit = verify_trail(use_checkpoints=False)

        say(tally.line())
        say(
            f"settled: {'every order final' if not live else f'{live} orders still working'} {settled:.1f} s "
            "after the load ended (Kite fills: postback, then the order's trades read back from Kite)"
        )
        say(
            f"orders: {load['count']} answered in {seconds:.0f} s, {load['count'] / seconds:.1f} orders/s (target "
            f"{target:.1f}), p50 {load['p50']:.1f} ms, p99 {load['p99']:.1f} ms, {load['errors']} errors; "
            f"Kite postbacks sent {len(postbacks.sent)}, refused {dict(postbacks.refused)}; strategy orders "
            f"{strategy_orders} from {len(deployment_ids)} deployments; all orders by status "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
        )
        say(
            "placed to filled (its event moving it to FILLED): "
            + "; ".join(f"{b} {c} orders p50 {p50:.2f} s, p99 {p99:.2f} s" for b, c, p50, p99 in fill_lag)
        )
        ws_ok = (
            bool(ws_result)
            and ws_result.get("connected", 0) == args.ws_clients
            and not any(
                ws_result.get(k, 0)
                for k in ("dropped", "backwards", "foreign", "inconsistent", "missed", "resync_errors")
            )
        )
        say(
            f"websockets: {ws_result.get('connected', 0)} of {args.ws_clients} clients connected, "
            f"{ws_result.get('dropped', 0)} dropped, {ws_result.get('retries', 0)} handshakes retried; "
            f"tick messages {ws_result.get('tick_messages', 0)} "
            f"({ws_result.get('quotes', 0)} quotes), user messages {ws_result.get('user_messages', 0)}, "
            f"orders seen {ws_result.get('orders_seen', 0)} (summed over clients); user streams reconnected "
            f"{ws_result.get('reconnects', 0)}, replays {ws_result.get('replays', 0)} "
            f"({ws_result.get('replayed', 0)} changes), resyncs {ws_result.get('resyncs', 0)} "
            f"({ws_result.get('resync_rows', 0)} order books reloaded, {ws_result.get('resync_errors', 0)} refused); "
            f"final states shown by a push {ws_result.get('final_by_push', 0)}, by a replay "
            f"{ws_result.get('final_by_replay', 0)}, by a resync {ws_result.get('final_by_resync', 0)}"
        )
        for example in ws_result.get("examples", []):
            say(f"  websocket: {example}")
        lowest = [min(m[i] for m in sampler.margins) for i in range(3)]
        rss = _flat(sampler.rss, args.rss_margin_mb)
        conns = _flat([float(c) for c in sampler.connections], args.connections_margin)
        verdicts = {
            "orders": (
                not tally.duplicated and not tally.lost and tally.acknowledged > 0 and not live,
                f"{tally.acknowledged} acknowledged, {tally.found} found, {len(tally.duplicated)} duplicated, "
                f"{len(tally.lost)} lost, {live} still working"
                + "".join(f"; {x}" for x in [*tally.duplicated, *tally.lost][:5]),
            ),
            "positions": (
                not position_problems and positions > 0,
                f"{positions} positions, {len(position_problems)} differing from their trades"
                + "".join(f"; {x}" for x in position_problems[:5]),
            ),
            "margin": (
                all(x >= 0 for x in lowest),
                f"lowest over {len(sampler.margins)} samples: margin blocked {lowest[0]} (account), {lowest[1]} "
                f"(position), funds available {lowest[2]}; at the end {', '.join(str(x) for x in final_margins)}",
            ),
            "audit": (
                audit.ok and audit.verified > 0,
                f"{audit.verified} events verified, {len(audit.breaks)} broken chains"
                + "".join(f"; {x}" for x in list(audit.breaks)[:3]),
            ),
            "websockets": (
                ws_ok,
                f"{ws_result.get('connected', 0)} of {args.ws_clients} connected, {ws_result.get('dropped', 0)} "
                f"dropped, {ws_result.get('backwards', 0)} went backwards, {ws_result.get('inconsistent', 0)} "
                f"inconsistent with the database, {ws_result.get('missed', 0)} missed, {ws_result.get('foreign', 0)} "
                f"of another user, {ws_result.get('resync_errors', 0)} order books refused on a resync",
            ),
            "memory": (
                rss[2],
                f"web workers' RSS first quarter {rss[0]:.0f} MB, last quarter {rss[1]:.0f} MB "
                f"(max {max(sampler.rss):.0f} MB, {len(sampler.rss)} samples)",
            ),
            "connections": (
                conns[2],
                f"database connections first quarter {conns[0]:.1f}, last quarter {conns[1]:.1f} "
                f"(max {max(sampler.connections)})",
            ),
        }
        for name, (passed, detail) in verdicts.items():
            say(f"verdict {name}: {_verdict(passed)}: {detail}")
        passed = all(passed for passed, _ in verdicts.values())
        say(f"soak: {_verdict(passed)}")
        return passed
    finally:
        for thread in (postbacks, sampler):
            if thread is not None:
                thread.stopping.set()
        stop_runner.set()
        if runner is not None:
            runner.join(30)
            if runner.is_alive():
                runner.terminate()
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        if server is not None:
            server.terminate()
            server.wait(30)
        fake.stop()
        if spec_file:
            Path(spec_file).unlink(missing_ok=True)
        close_old_connections()
        for thread in (postbacks, sampler):
            if thread is not None:
                thread.join(10)


if __name__ == "__main__":
    main()
