"""Order placement throughput and latency through the real HTTP stack, against a trivial endpoint.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/orders.py [--clients 32] [--seconds 10]

Creates a throwaway database (test_<name>; audit rows can never be deleted), a Daphne server in its
own process on loopback, and K concurrent clients in another process, each an authenticated user
trading its own paper accounts (several accounts per client, so the 10 orders/s per account and
segment governor is not what is measured). In the same run it measures:
- baseline: GET /api/v1/whoami (session auth, no database work beyond the session);
- orders: POST /api/v1/orders, alternating MARKET buys and sells that fill on the paper exchange
  (validation, pre-trade check, order row, audit events, broker call, fill, position, margin).
It prints requests/s, p50 and p99 for both and the ratio, then the cost of one check_pre_trade with
limits cached. Targets (2 cores): >= 300 orders/s, p99 < 100 ms at 32 clients; <= 50 us per check.
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
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "terminal.settings")


# --- the client process (no Django) ---------------------------------------------------------------
def _client_run(port, sessions, path, bodies, seconds, queue) -> None:
    import json

    import requests

    stop_at = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in sessions]
    errors = [0] * len(sessions)

    def worker(i: int) -> None:
        http = requests.Session()
        session_id, csrf = sessions[i]
        http.cookies.set("sessionid", session_id)
        http.cookies.set("csrftoken", csrf)
        headers = {"X-CSRFToken": csrf, "Content-Type": "application/json", "Referer": f"http://127.0.0.1:{port}/"}
        url = f"http://127.0.0.1:{port}{path}"
        n = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            if bodies is None:
                response = http.get(url, headers=headers)
            else:
                response = http.post(url, data=json.dumps(bodies[i][n % len(bodies[i])]), headers=headers)
            latencies[i].append(time.perf_counter() - started)
            if response.status_code >= 300:
                errors[i] += 1
                if errors[i] == 1:
                    print(f"client {i}: {response.status_code} {response.text[:200]}", file=sys.stderr)
            n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sessions))]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    queue.put(([x for xs in latencies for x in xs], sum(errors), elapsed))


def _measure(port, sessions, path, bodies, seconds) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_client_run, args=(port, sessions, path, bodies, seconds, queue))
    process.start()
    latencies, errors, elapsed = queue.get()
    process.join()
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "count": len(latencies),
        "errors": errors,
    }


# --- the bench (Django) ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--accounts-per-client", type=int, default=4)
    parser.add_argument("--checks", type=int, default=100_000, help="check_pre_trade calls to time")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        sys.exit("bench/orders.py needs DATABASE_URL (PostgreSQL) and REDIS_URL: the server runs in its own process.")
    original = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    try:
        sessions, bodies = _world(args.clients, args.accounts_per_client)
        port = _free_port()
        server = _start_server(port, test_name)
        print(
            f"{os.cpu_count()} cores, {args.clients} clients, "
            f"{args.clients * args.accounts_per_client} paper accounts, "
            f"{args.seconds:.0f} s per measurement, Daphne on 127.0.0.1:{port}, database {test_name}"
        )
        _measure(port, sessions, "/api/v1/whoami", None, 1.0)  # warm up both paths
        _measure(port, sessions, "/api/v1/orders", bodies, 1.0)
        baseline = _measure(port, sessions, "/api/v1/whoami", None, args.seconds)
        orders = _measure(port, sessions, "/api/v1/orders", bodies, args.seconds)
        for name, r in (("baseline GET /api/v1/whoami", baseline), ("orders   POST /api/v1/orders", orders)):
            print(
                f"{name}: {r['rate']:8.1f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                f"({r['count']} requests, {r['errors']} errors)"
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


def _world(clients: int, per_client: int):
    from decimal import Decimal

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Membership, Organisation, Role, User
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
    sessions, bodies = [], []
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
        bodies.append(
            [
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
        )
    return sessions, bodies


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, database: str):
    from urllib.parse import urlsplit, urlunsplit

    import requests

    url = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path=f"/{database}")),
        "LOG_LEVEL": "WARNING",
        # a pool above the client count: without one, Daphne's per-request threads exhaust PostgreSQL
        "DATABASE_POOL_SIZE": os.environ.get("DATABASE_POOL_SIZE", "40"),
    }
    daphne = Path(sys.executable).with_name("daphne")
    server = subprocess.Popen(
        [str(daphne), "-b", "127.0.0.1", "-p", str(port), "terminal.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
            return server
        except requests.ConnectionError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("Daphne did not start")


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
