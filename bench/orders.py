"""Order placement throughput and latency through the real HTTP stack, against a trivial endpoint.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/orders.py [--clients 32] [--seconds 10]

Creates a throwaway database (test_<name>; audit rows can never be deleted), the production web
server (gunicorn with uvicorn workers, config/gunicorn.conf.py; --workers sets WEB_CONCURRENCY) on
loopback, and K concurrent clients spread over a few client processes (one keep-alive connection
per client, the same clients for both measurements), each an authenticated user trading its own
paper accounts (several accounts per client; the orders-per-second governor runs on every order
but its limit is raised for the run, so it is not what is measured). In the same run it measures:
- baseline: GET /api/v1/whoami (session auth, no database work beyond the session);
- orders: POST /api/v1/orders, alternating MARKET buys and sells that fill on the paper exchange
  (validation, pre-trade check, order row, audit events, broker call, fill, position, margin).
It prints requests/s, p50 and p99 for both and the ratio, then the cost of one check_pre_trade with
limits cached. Targets (2 cores): >= 300 orders/s, p99 < 100 ms at 32 clients; <= 50 us per check.

    ... python bench/orders.py --broker kite [--clients 64] [--broker-latency 0.2] [--overhead-clients 8]

The same orders sent to Kite Connect: each client also trades its own Kite accounts (API key and
secret stored, a live session; distinct client codes), and the served terminal's KITE_API_ROOT is
the local Kite server of tests/kite/fake_kite.py, run in this process, which fills MARKET orders and
answers every request after --broker-latency seconds (Kite's typical latency). Kite's client-side
rate limits are the served terminal's own (Redis, per account: 10 orders/s, 400 a minute); each
client has one order in flight and rotates over its accounts, so an account sends at most
1 / (latency x accounts per client) orders/s (1.25 by default) and the limiter never binds: the
run prints how many Kite orders were refused. In the same run it measures:
- paper: POST /api/v1/orders on the paper accounts at --clients;
- kite: the same on the Kite accounts at --clients, and its orders/s as a ratio of paper's (the target
  is >= 0.8: a request waiting on the broker holds neither CPU nor a request slot);
- overhead: kite at --overhead-clients, each order's end-to-end latency less the time the Kite server
  held its request (received to answered), p50 and p99 (targets <= 10 ms and <= 30 ms).
Results are printed as numbers and ratios against the targets, not as verdicts. Kite orders stay OPEN
in the terminal (no postbacks are sent), so they add no fills, trades or positions.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


# --- the client processes (no Django) -------------------------------------------------------------
def _client_run(port, sessions, path, bodies, start_at, seconds, queue, want_ids=False, pace=0.0, keys=None) -> None:
    """Run one thread per session, each on its own keep-alive connection, from ``start_at`` for ``seconds``.
    ``want_ids``: also report each answer's ``broker_order_id`` (in the order of the latencies).
    ``pace``: seconds between the starts of a client's requests (0: back to back; a client that falls
    behind sends at once, without a burst to catch up). ``keys``: send each POST under an
    ``Idempotency-Key`` of ``<keys>-<session>-<n>`` and report every answer as (key, HTTP status or None
    for no answer, the order's ``client_order_id``, latency), as tests/drills/ledger.py records them; a
    dropped connection is then reported and reopened instead of ending the client."""
    import http.client
    import json

    latencies: list[list[float]] = [[] for _ in sessions]
    ids: list[list[str]] = [[] for _ in sessions]
    answers: list[list[tuple]] = [[] for _ in sessions]
    errors = [0] * len(sessions)

    def worker(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        session_id, csrf = sessions[i]
        headers = {
            "Cookie": f"sessionid={session_id}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Content-Type": "application/json",
            "Referer": f"http://127.0.0.1:{port}/",
        }
        payloads = [json.dumps(b).encode() for b in bodies[i]] if bodies is not None else None
        n = 0
        time.sleep(max(0.0, start_at - time.time()))
        stop_at = time.perf_counter() + seconds
        due = time.perf_counter()
        while time.perf_counter() < stop_at:
            if pace:
                now = time.perf_counter()
                due = max(due + pace, now - pace)
                time.sleep(max(0.0, due - now))
            started = time.perf_counter()
            key = f"{keys}-{i}-{n}" if keys else None
            try:
                if payloads is None:
                    connection.request("GET", path, headers=headers)
                else:
                    sent = {**headers, "Idempotency-Key": key} if key else headers
                    connection.request("POST", path, body=payloads[n % len(payloads)], headers=sent)
                response = connection.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as exc:
                if key is None:
                    raise
                answers[i].append((key, None, type(exc).__name__, time.perf_counter() - started))
                errors[i] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                n += 1
                continue
            latencies[i].append(time.perf_counter() - started)
            body = _json_or_none(text) if want_ids or key else None
            if want_ids:
                ids[i].append(body.get("broker_order_id", "") if response.status < 300 and body else "")
            if key:
                order_id = str(body.get("client_order_id", "")) if body else ""
                answers[i].append((key, response.status, order_id, latencies[i][-1]))
            if response.status >= 300:
                errors[i] += 1
                if errors[i] == 1:
                    print(f"client {i}: {response.status} {text[:200]!r}", file=sys.stderr)
            if response.will_close:
                connection.close()
            n += 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [x for xs in answers for x in xs]
    queue.put(([x for xs in latencies for x in xs], sum(errors), [x for xs in ids for x in xs], flat))


def _json_or_none(text: bytes):
    """The answer's JSON object, or None (a proxy's HTML error page, an empty body)."""
    import json

    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _measure(port, sessions, path, bodies, seconds, processes, want_ids=False, pace=0.0, keys=None) -> dict:
    """Run the sessions spread over ``processes`` client processes, all starting at one instant
    (``pace`` and ``keys``: see ``_client_run``; the answers are returned as ``answers``)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.0 + 0.2 * processes  # after every process has started
    workers = []
    for p in range(processes):
        mine = list(range(p, len(sessions), processes))
        args = (port, [sessions[i] for i in mine], path, None if bodies is None else [bodies[i] for i in mine])
        prefix = f"{keys}-{p}" if keys else None
        workers.append(
            ctx.Process(
                target=_client_run,
                args=(*args, start_at, seconds, queue),
                kwargs={"want_ids": want_ids, "pace": pace, "keys": prefix},
            )
        )
    for process in workers:
        process.start()
    latencies, errors, ids, answers = [], 0, [], []
    for _ in workers:
        got, failed, got_ids, got_answers = queue.get()
        latencies += got
        errors += failed
        ids += got_ids
        answers += got_answers
    for process in workers:
        process.join()
    pairs = list(zip(latencies, ids, strict=True)) if want_ids else []
    latencies.sort()
    return {
        "pairs": pairs,
        "answers": answers,
        "rate": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000 if latencies else float("nan"),
        "count": len(latencies),
        "errors": errors,
    }


# --- the bench (Django) ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", type=int, default=None, help="concurrent clients (default 32; 64 with --broker kite)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--accounts-per-client", type=int, default=4)
    parser.add_argument("--checks", type=int, default=100_000, help="check_pre_trade calls to time")
    parser.add_argument(
        "--workers", type=int, default=None, help="server worker processes (default: the server's own, WEB_CONCURRENCY)"
    )
    parser.add_argument(
        "--client-processes", type=int, default=4, help="client processes the clients are spread over (threads in each)"
    )
    parser.add_argument(
        "--broker", choices=("paper", "kite"), default="paper", help="kite: compare Kite orders with paper orders"
    )
    parser.add_argument("--broker-latency", type=float, default=0.2, help="seconds the Kite server takes to answer")
    parser.add_argument("--overhead-clients", type=int, default=8, help="clients for the Kite overhead measurement")
    args = parser.parse_args()
    kite = args.broker == "kite"
    if args.clients is None:
        args.clients = 64 if kite else 32

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        sys.exit("bench/orders.py needs DATABASE_URL (PostgreSQL) and REDIS_URL: the server runs in its own process.")
    original = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    if kite:
        from bench.orders_kite import bench_kite

        try:
            bench_kite(args, test_name)
        finally:
            connection.creation.destroy_test_db(original, verbosity=0)
        return
    try:
        sessions, bodies, _ = _world(args.clients, args.accounts_per_client)
        port = _free_port()
        server, workers = _start_server(port, test_name, args.workers)
        clients = min(args.client_processes, args.clients)
        print(
            f"{os.cpu_count()} cores, {args.clients} clients in {clients} processes, "
            f"{args.clients * args.accounts_per_client} paper accounts, {args.seconds:.0f} s per measurement, "
            f"server: gunicorn with {workers} uvicorn workers on 127.0.0.1:{port}, database {test_name}"
        )
        _measure(port, sessions, "/api/v1/whoami", None, 1.0, clients)  # warm up both paths
        _measure(port, sessions, "/api/v1/orders", bodies, 1.0, clients)
        results = {}
        for name, path, payloads in (
            ("baseline GET /api/v1/whoami", "/api/v1/whoami", None),
            ("orders   POST /api/v1/orders", "/api/v1/orders", bodies),
        ):
            before = _cpu_seconds(server.pid, test_name)
            results[name] = _measure(port, sessions, path, payloads, args.seconds, clients)
            after = _cpu_seconds(server.pid, test_name)
            results[name]["cpu"] = [(b - a) * 1000 / results[name]["count"] for a, b in zip(before, after, strict=True)]
        baseline, orders = results.values()
        for name, r in results.items():
            print(
                f"{name}: {r['rate']:8.1f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                f"({r['count']} requests, {r['errors']} errors; CPU per request: server {r['cpu'][0]:.1f} ms, "
                f"PostgreSQL {r['cpu'][1]:.1f} ms)"
            )
        print(f"orders/s as a share of the baseline's requests/s: {orders['rate'] / baseline['rate']:.2f}")
        verdict = "met" if orders["rate"] >= 300 and orders["p99"] < 100 else "MISSED"
        print(f"target >= 300 orders/s with p99 < 100 ms at 32 clients: {verdict}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        connection.creation.destroy_test_db(original, verbosity=0)
    _bench_check_pre_trade(args.checks)


def _cpu_seconds(server_pid: int, database: str) -> tuple[float, float]:
    """Return the CPU time so far of the web server (master and workers) and of the PostgreSQL backends
    serving ``database``: less sensitive to a busy machine than wall-clock rates (a backend that exits
    between two readings takes its time with it; the pool keeps them open)."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid: str) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    server = sum(cpu(pid) for pid in [str(server_pid), *children])
    database_cpu = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"postgres: ") and f" {database} ".encode() in command:
                database_cpu += cpu(entry.name)
    return server, database_cpu


def _world(clients: int, per_client: int, kite: bool = False, own_books: bool = False):
    """Users with sessions, each with its own paper accounts (and Kite accounts, signed in, with ``kite``;
    each its own Kite user with ``own_books``); return the sessions and each client's order bodies for its
    paper accounts and for its Kite ones."""
    from decimal import Decimal

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Membership, Organisation, Role, User
    from bench.orders_kite import signed_in_kite_accounts
    from brokers.models import BrokerAccount
    from marketdata.models import Instrument
    from marketdata.quotes import DepthLevel, Quote, set_quotes

    instrument = Instrument.objects.create(
        exchange="NSE",
        segment="NSE",
        tradingsymbol="BENCH",
        exchange_token="1",
        instrument_type="EQ",
        lot_size=1,
        tick_size=Decimal("0.05"),
    )
    if kite:  # Kite orders are sent by the Kite mapping (as the daily instruments import writes it)
        from bench.orders_kite import map_for_kite

        map_for_kite(instrument)
    set_quotes(
        [
            Quote(
                instrument_id=instrument.pk,
                ltp=Decimal("100"),
                ts=timezone.now(),
                bid=Decimal("99.95"),
                ask=Decimal("100.05"),
                bids=(DepthLevel(Decimal("99.95"), 1_000_000),),
                asks=(DepthLevel(Decimal("100.05"), 1_000_000),),
            )
        ]
    )
    sessions: list[tuple[str, str]] = []
    bodies: list[list[dict]] = []
    kite_bodies: list[list[dict]] = []

    def orders_for(accounts) -> list[dict]:
        return [
            {
                "account_id": accounts[n % per_client].pk,
                "instrument_id": instrument.pk,
                "side": "BUY" if (n // per_client) % 2 == 0 else "SELL",
                "quantity": 1,
                "order_type": "MARKET",
                "product": "MIS",
            }
            for n in range(per_client * 2)
        ]

    for i in range(clients):
        # One firm per client, as on a shared terminal: each order's live update goes to its owner only.
        org = Organisation.objects.create(name=f"Bench {i}", slug=f"bench-{i}")
        user = User.objects.create_user(f"bench{i}")
        Membership.objects.create(user=user, organisation=org, role=Role.OWNER)
        accounts = [
            BrokerAccount.objects.create(organisation=org, label=f"b{i}-{j}", broker="paper", client_code=f"B{i}-{j}")
            for j in range(per_client)
        ]
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        # The API admits sessions that passed the second factor, as a browser's would have.
        device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        store[DEVICE_ID_SESSION_KEY] = device.persistent_id
        store.create()
        sessions.append((store.session_key, secrets.token_hex(16)))
        bodies.append(orders_for(accounts))
        if kite:
            kite_bodies.append(orders_for(signed_in_kite_accounts(org, i, per_client, own_books)))
    _clear_foreign_sockets(User.objects.filter(username__startswith="bench").values_list("pk", flat=True))
    return sessions, bodies, kite_bodies


def _clear_foreign_sockets(user_ids) -> None:
    """Forget the sockets counted for the bench's users. Their ids are those of some other database's
    users on this Redis (a test run's, a dev server's), whose open sockets would have every bench
    order's live update rendered (infra.sockets.users_listening) for nobody."""
    import redis
    from django.conf import settings

    from infra import sockets

    keys = [f"{sockets.KEY_PREFIX}{user_id}" for user_id in user_ids]
    removed = redis.Redis.from_url(settings.REDIS_URL).delete(*keys) if keys else 0
    if removed:
        print(f"forgot the sockets of {removed} users another database had under the bench users' ids")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, database: str, workers: int | None, extra_env: dict[str, str] | None = None):
    """Start the production web command (gunicorn, uvicorn workers) on loopback; return it and its worker count."""
    import urllib.request
    from urllib.parse import urlsplit, urlunsplit

    url = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{database}")),
        "LOG_LEVEL": "WARNING",
        # the web tier's pool per process, as in the deployment files
        "DATABASE_POOL_SIZE": os.environ.get("DATABASE_POOL_SIZE", "10"),
        # No Celery worker runs here: tasks another run left queued on this Redis (a test's inbox
        # drain) must not fail the health check the start waits for once they are 5 minutes old.
        "HEALTH_QUEUE_AGE_SECONDS": "86400",
        # The orders-per-second governor runs on every order (its Redis round trip is part of the
        # cost measured) but never binds: a fast machine sends more than 10 orders/s per account
        # even over several accounts, and refusals would be counted as errors (and are cheaper).
        "RMS_DEFAULT_OPS_LIMIT": "1000000",
        **(extra_env or {}),
    }
    if workers is not None:
        env["WEB_CONCURRENCY"] = str(workers)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    bind = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [gunicorn, "--config", "config/gunicorn.conf.py", "--bind", bind, "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.terminate()
        raise SystemExit("the web server did not start")
    # gunicorn starts its workers before any of them answers; count them as the kernel lists them.
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return server, len(children)


def _bench_check_pre_trade(calls: int) -> None:
    """Time check_pre_trade with its limits cached (the in-process rate governor; Redis adds one round trip)."""
    from datetime import date
    from decimal import Decimal

    from rms import limits, throttle
    from rms.limits import Limits
    from rms.services import OrderIntent, RiskState, check_pre_trade

    throttle.use(throttle.LocalThrottle())
    key = (1, 1, "")
    limits._cache[key] = Limits(
        max_order_quantity=10_000,
        max_order_value=Decimal("10000000"),
        max_open_orders=1_000_000,
        max_daily_loss=Decimal("100000"),
        max_orders_per_second=10**9,
        max_ltp_deviation_pct=Decimal("5"),
        allowed_exchanges=frozenset({"NSE", "NFO"}),
        allowed_products=frozenset({"MIS", "CNC", "NRML"}),
    )
    limits._state["checked_at"] = time.monotonic() + 3600  # keep the cached copy for the whole run
    intent = OrderIntent(
        account_id=1,
        organisation_id=1,
        user_id=1,
        strategy="",
        exchange="NSE",
        instrument_type="EQ",
        lot_size=1,
        tick_size=Decimal("0.05"),
        freeze_quantity=None,
        lower_circuit=Decimal("900"),
        upper_circuit=Decimal("1100"),
        expiry=None,
        tradable=True,
        side="BUY",
        quantity=10,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        price=Decimal("1000"),
        trigger_price=None,
    )
    state = RiskState(
        today=date.today(), ltp=Decimal("1000"), available_margin=Decimal("1000000"), required_margin=Decimal("2000")
    )
    check_pre_trade(intent=intent, state=state)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls // 5):
            check_pre_trade(intent=intent, state=state)
        best = min(best, (time.perf_counter() - started) / (calls // 5))
    verdict = "met" if best * 1e6 <= 50 else "MISSED"
    print(
        f"check_pre_trade with limits cached: {best * 1e6:.1f} us per call (best of 5 x {calls // 5}); "
        f"target <= 50 us: {verdict}"
    )
    throttle.use(None)


if __name__ == "__main__":
    main()
