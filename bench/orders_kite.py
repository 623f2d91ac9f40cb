"""The ``--broker kite`` mode of bench/orders.py (see its docstring): the local Kite server of
tests/kite/fake_kite.py, the bench users' Kite accounts signed in to it, and the paper and Kite
measurements with the terminal's overhead over the Kite server's own time."""

from __future__ import annotations

import os
import statistics
from datetime import timedelta

from bench.orders import _cpu_seconds, _free_port, _measure, _start_server, _world


def map_for_kite(instrument) -> None:
    """Put the bench's instrument in the Kite mapping, as the daily instruments import would."""
    from django.utils import timezone

    from brokers.instrument_map import instrument_map_invalidate
    from brokers.models import BrokerInstrument

    BrokerInstrument.objects.create(
        broker="kite",
        instrument=instrument,
        token="1",
        tradingsymbol=instrument.tradingsymbol,
        exchange=instrument.exchange,
        listed_at=timezone.now(),
    )
    instrument_map_invalidate()


def signed_in_kite_accounts(org, i: int, per_client: int, own_books: bool = False) -> list:
    """Client ``i``'s Kite accounts in ``org``: API key and secret stored (the local Kite server's), each
    with a live session and its own client code; with ``own_books`` each is its own Kite user (the local
    Kite server's ``user_token``), whose order book holds only its own orders, as at Kite."""
    from django.utils import timezone

    from brokers.models import BrokerAccount
    from brokers.services.credentials import broker_credentials_set
    from brokers.services.sessions import session_start
    from tests.kite import fake_kite

    kite_accounts = [
        BrokerAccount.objects.create(organisation=org, label=f"k{i}-{j}", broker="kite", client_code=f"K{i}-{j}")
        for j in range(per_client)
    ]
    for account in kite_accounts:
        credentials = {"api_key": fake_kite.API_KEY, "api_secret": fake_kite.API_SECRET}
        broker_credentials_set(account=account, credentials=credentials)
        session_start(
            account=account,
            secrets={
                "access_token": fake_kite.user_token(account.client_code) if own_books else fake_kite.ACCESS_TOKEN
            },
            expires_at=timezone.now() + timedelta(hours=8),
        )
    return kite_accounts


def bench_kite(args, test_name: str) -> None:
    """Paper and Kite orders at ``args.clients``, then Kite at ``args.overhead_clients`` (see the module)."""
    from django.db.models import Count

    from orders.models import Order
    from tests.kite.fake_kite import FakeKite

    fake = FakeKite(latency=args.broker_latency).start()
    server = None
    try:
        per_client = args.accounts_per_client
        sessions, paper, kite = _world(args.clients, per_client, kite=True)
        port = _free_port()
        server, workers = _start_server(port, test_name, args.workers, {"KITE_API_ROOT": fake.url})
        clients = min(args.client_processes, args.clients)
        print(
            f"{os.cpu_count()} cores, {args.clients} clients in {clients} processes, each with {per_client} paper "
            f"and {per_client} Kite accounts, {args.seconds:.0f} s per measurement, server: gunicorn with {workers} "
            f"uvicorn workers on 127.0.0.1:{port}, database {test_name}; the Kite server at {fake.url} answers "
            f"after {args.broker_latency * 1000:.0f} ms"
        )
        per_account = 1 / (args.broker_latency * per_client) if args.broker_latency > 0 else float("inf")
        print(
            "Kite rate limits: the served terminal's limiter (Redis; per account 10 orders/s, 400 a minute); one "
            f"order in flight per client over {per_client} accounts: at most {per_account:.2f} orders/s per account"
        )
        _measure(port, sessions, "/api/v1/orders", paper, 1.0, clients)  # warm up both paths
        # Every Kite account's first order also reads its funds from Kite (its ledger opens at Kite's cash).
        _measure(port, sessions, "/api/v1/orders", kite, 1.0 + 2 * per_client * args.broker_latency, clients)
        few = min(args.overhead_clients, args.clients)
        results = {}
        for name, count, bodies in (
            (f"paper POST /api/v1/orders, {args.clients} clients", args.clients, paper),
            (f"kite  POST /api/v1/orders, {args.clients} clients", args.clients, kite),
            (f"kite  POST /api/v1/orders, {few} clients", few, kite),
        ):
            before = _cpu_seconds(server.pid, test_name)
            r = _measure(
                port, sessions[:count], "/api/v1/orders", bodies[:count], args.seconds, min(clients, count), True
            )
            after = _cpu_seconds(server.pid, test_name)
            r["cpu"] = [(b - a) * 1000 / max(1, r["count"]) for a, b in zip(before, after, strict=True)]
            results[name] = r
            print(
                f"{name}: {r['rate']:8.1f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                f"({r['count']} requests, {r['errors']} errors; CPU per request: server {r['cpu'][0]:.1f} ms, "
                f"PostgreSQL {r['cpu'][1]:.1f} ms)"
            )
        paper_r, kite_r, few_r = results.values()
        print(
            f"kite orders/s as a ratio of paper orders/s at {args.clients} clients: "
            f"{kite_r['rate'] / paper_r['rate']:.2f} (target >= 0.8)"
        )
        held = _kite_held(fake)
        overhead = sorted(latency - held[i] for latency, i in few_r["pairs"] if i in held)
        own = sorted(held[i] - args.broker_latency for _, i in few_r["pairs"] if i in held)
        if overhead:
            p50, p99 = statistics.median(overhead) * 1000, _p99(overhead) * 1000
            print(
                f"terminal overhead at {few} clients (end-to-end latency less the Kite server's time, "
                f"{len(overhead)} orders): p50 {p50:.1f} ms ({p50 / 10:.2f} x the 10 ms target), "
                f"p99 {p99:.1f} ms ({p99 / 30:.2f} x the 30 ms target); the Kite server's own time beyond "
                f"its latency: p50 {statistics.median(own) * 1000:.1f} ms, p99 {_p99(own) * 1000:.1f} ms"
            )
        else:
            print(f"terminal overhead at {few} clients: no order reached the Kite server")
        statuses = dict(
            Order.objects.filter(account__broker="kite").values_list("status").annotate(n=Count("pk")).order_by()
        )
        limited = Order.objects.filter(account__broker="kite", message__startswith="Rate limit").count()
        print(
            "Kite orders by status: "
            + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
            + f"; refused by the rate limiter: {limited}"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        fake.stop()


def _kite_held(fake) -> dict[str, float]:
    """Seconds the Kite server held each placed order's request (received to answered), by order id."""
    import json

    with fake._lock:
        answers = list(fake.answers)
    held = {}
    for answer in answers:
        if answer.recorded.method == "POST" and answer.recorded.path.startswith("/orders/") and answer.status == 200:
            held[json.loads(answer.body)["data"]["order_id"]] = answer.answered - answer.received
    return held


def _p99(ordered: list[float]) -> float:
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]
