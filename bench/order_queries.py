"""SQL round trips and transactions per filled MARKET order, through the whole Django stack in process.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/order_queries.py [--orders 50] [--profile]

The deterministic companion of bench/orders.py (whose wall-clock numbers depend on the machine's
load): on a throwaway test database it places ``--orders`` paper MARKET orders that fill, through
Django's test client (POST /api/v1/orders: middleware, session, ninja, the order services, the
paper exchange, the audit trail, the live-update push), alternating buys and sells over several
accounts as the HTTP bench does, and prints per order: SQL statements, transactions (atomic blocks
plus statements run in autocommit) and the request thread's CPU time, and the same for the baseline
GET /api/v1/whoami. With ``--profile`` it prints a cProfile summary of the orders measured in the
request thread's CPU time (waits on the database do not count), by cumulative and own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "terminal.settings")


class Recorder:
    """A database execute wrapper counting statements and transactions."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.statements: list[str] = []
        self.transactions = 0
        self._in_block = False

    def __call__(self, execute, sql, params, many, context):
        in_block = self.connection.in_atomic_block
        if not in_block:
            self.transactions += 1  # autocommit: the statement is its own transaction
        elif not self._in_block:
            self.transactions += 1  # the first statement of an atomic block
        self._in_block = in_block
        self.statements.append(sql)
        return execute(sql, params, many, context)

    def reset_block(self) -> None:
        self._in_block = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary of the orders")
    parser.add_argument("--show", action="store_true", help="print the statements of one order")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        client, bodies = _world(args.accounts)
        _run(client, bodies, connection, args)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


def _world(per_client: int):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from django.test import Client

    from bench.orders import _world as http_world

    sessions, bodies = http_world(1, per_client)
    client = Client(HTTP_X_CSRFTOKEN=sessions[0][1])
    client.cookies["sessionid"] = sessions[0][0]
    client.cookies["csrftoken"] = sessions[0][1]
    return client, bodies[0]


def _run(client, bodies, connection, args) -> None:
    from django.db.backends.signals import connection_created  # noqa: F401  (imported for the wrapper's sake)

    # warm up: first-use costs (imports, template compilation, limits cache, funds rows) are not per order
    from orders import push

    for body in bodies:
        _post(client, body)
    client.get("/api/v1/whoami")
    push.flush()  # the warm-up's live updates are sent by now

    def measure(step, n):
        recorder = Recorder(connection)
        per_request = []
        recorder.cpu = time.thread_time()
        with connection.execute_wrapper(recorder):
            for i in range(n):
                before_s, before_t = len(recorder.statements), recorder.transactions
                recorder.reset_block()
                step(i)
                per_request.append((len(recorder.statements) - before_s, recorder.transactions - before_t))
        recorder.cpu = time.thread_time() - recorder.cpu
        return recorder, per_request

    whoami, _ = measure(lambda i: client.get("/api/v1/whoami"), 20)
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    if profiler:
        profiler.enable()
    orders, per_order = measure(lambda i: _post(client, bodies[i % len(bodies)]), args.orders)
    if profiler:
        profiler.disable()
    print(
        f"baseline GET /api/v1/whoami: {len(whoami.statements) / 20:.1f} statements, "
        f"{whoami.transactions / 20:.1f} transactions, {whoami.cpu * 1000 / 20:.1f} ms CPU per request"
    )
    print(
        f"orders   POST /api/v1/orders (MARKET, filled): {len(orders.statements) / args.orders:.1f} statements, "
        f"{orders.transactions / args.orders:.1f} transactions, "
        f"{orders.cpu * 1000 / args.orders:.1f} ms CPU{' (profiled)' if profiler else ''} per order "
        f"(min {min(s for s, _ in per_order)}, max {max(s for s, _ in per_order)} statements)"
    )
    kinds = Counter(sql.split(None, 1)[0].upper() for sql in orders.statements)
    print("statement kinds per order: " + ", ".join(f"{k} {v / args.orders:.1f}" for k, v in kinds.most_common()))
    if args.show:
        recorder, _ = measure(lambda i: _post(client, bodies[0]), 1)
        for sql in recorder.statements:
            print("  ", sql[:160].replace("\n", " "))
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue())


def _post(client, body) -> None:
    response = client.post("/api/v1/orders", data=body, content_type="application/json")
    if response.status_code != 201 or response.json()["status"] != "FILLED":
        raise SystemExit(f"order not filled: {response.status_code} {response.content[:300]!r}")


if __name__ == "__main__":
    main()
