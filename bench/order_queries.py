"""SQL round trips and transactions per filled MARKET order, through the whole Django stack in process.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/order_queries.py [--orders 50] [--profile]

The deterministic companion of bench/orders.py (whose wall-clock numbers depend on the machine's
load): on a throwaway test database it places ``--orders`` paper MARKET orders that fill, through
Django's test client (POST /api/v1/orders: middleware, session, ninja, the order services, the
paper exchange, the audit trail, the live-update push), alternating buys and sells over several
accounts as the HTTP bench does, and prints per order: SQL statements, transactions (atomic blocks
plus statements run in autocommit) and the request thread's CPU time, and the same for the baseline
GET /api/v1/whoami. With ``--profile`` (or ``--profile baseline``) it prints a cProfile summary of
the orders (or of the baseline requests) in CPU time per thread (waits on the database do not
count), by cumulative and own time.

With ``--asgi`` the requests go instead through the production entry point, ``config.asgi``, on
an event loop in this process (uvloop when installed, as uvicorn runs it; the database pool on, as
the web tier runs it), and the CPU time counted is the whole process's: the thread hops between the
event loop and the request threads are part of what a request costs the web tier. No HTTP parsing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


BASELINE_REQUESTS = 200


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
    parser.add_argument(
        "--accounts", type=int, default=16, help="paper accounts the orders go round (each may take 10 orders/s)"
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="orders",
        choices=("orders", "baseline"),
        help="print a cProfile summary of the orders (or of the baseline requests)",
    )
    parser.add_argument("--show", action="store_true", help="print the statements of one order")
    parser.add_argument("--asgi", action="store_true", help="through config.asgi, counting the process's CPU")
    args = parser.parse_args()
    if args.asgi:
        os.environ.setdefault("DATABASE_POOL_SIZE", "10")  # as the web tier runs (deploy files, bench/orders.py)

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        client, bodies = _world(args.accounts, args.asgi)
        _run(client, bodies, connection, args)
    finally:
        from orders import push

        push.flush()  # the last live updates read the database being dropped
        connection.close()
        connection.creation.destroy_test_db(original, verbosity=0)


def _world(per_client: int, asgi: bool = False):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from django.test import Client

    from bench.orders import _world as http_world

    sessions, bodies = http_world(1, per_client)
    if asgi:
        return AsgiClient(*sessions[0]), bodies[0]
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
        clock = time.process_time if args.asgi else time.thread_time
        recorder.cpu = clock()
        with connection.execute_wrapper(recorder):
            for i in range(n):
                before_s, before_t = len(recorder.statements), recorder.transactions
                recorder.reset_block()
                step(i)
                per_request.append((len(recorder.statements) - before_s, recorder.transactions - before_t))
        recorder.cpu = clock() - recorder.cpu
        return recorder, per_request

    profiler = ThreadProfiler() if args.profile == "baseline" else None
    if profiler:
        profiler.enable()
    whoami, _ = measure(lambda i: client.get("/api/v1/whoami"), BASELINE_REQUESTS)
    profiled = " (profiled)" if args.profile == "orders" else ""
    if profiler:
        profiler.disable()
    else:
        profiler = ThreadProfiler() if args.profile == "orders" else None
    if args.profile == "orders":
        profiler.enable()
    orders, per_order = measure(lambda i: _post(client, bodies[i % len(bodies)]), args.orders)
    if profiler:
        profiler.disable()
    if args.asgi:  # the request threads' statements are not counted (each thread has its own connection)
        print(f"baseline GET /api/v1/whoami: {whoami.cpu * 1000 / BASELINE_REQUESTS:.1f} ms process CPU per request")
        print(
            f"orders   POST /api/v1/orders (MARKET, filled): {orders.cpu * 1000 / args.orders:.1f} ms process CPU"
            f"{profiled} per order"
        )
        print("(through config.asgi in process: the event loop, the request threads and the push thread)")
    else:
        print(
            f"baseline GET /api/v1/whoami: {len(whoami.statements) / BASELINE_REQUESTS:.1f} statements, "
            f"{whoami.transactions / BASELINE_REQUESTS:.1f} transactions, "
            f"{whoami.cpu * 1000 / BASELINE_REQUESTS:.1f} ms CPU per request"
        )
        print(
            f"orders   POST /api/v1/orders (MARKET, filled): {len(orders.statements) / args.orders:.1f} statements, "
            f"{orders.transactions / args.orders:.1f} transactions, "
            f"{orders.cpu * 1000 / args.orders:.1f} ms CPU{profiled} per order "
            f"(min {min(s for s, _ in per_order)}, max {max(s for s, _ in per_order)} statements)"
        )
    kinds = Counter(sql.split(None, 1)[0].upper() for sql in orders.statements)
    if not args.asgi:
        print("statement kinds per order: " + ", ".join(f"{k} {v / args.orders:.1f}" for k, v in kinds.most_common()))
    if args.show:
        recorder, _ = measure(lambda i: _post(client, bodies[0]), 1)
        for sql in recorder.statements:
            print("  ", sql[:160].replace("\n", " "))
    if profiler:
        out = io.StringIO()
        stats = profiler.stats(out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue())


class ThreadProfiler:
    """cProfile in this thread and in every thread started while it is on (each counts its own CPU time)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def _start_in_thread(self, *_args) -> None:
        profile = cProfile.Profile(time.thread_time)
        self.profiles.append(profile)
        profile.enable()  # replaces this hook for the thread

    def enable(self) -> None:
        import threading

        threading.setprofile(self._start_in_thread)
        self._start_in_thread()

    def disable(self) -> None:
        import threading

        threading.setprofile(None)
        for profile in self.profiles:
            profile.disable()  # in the threads still running, the profile simply stops being read

    def stats(self, stream) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0], stream=stream)
        for profile in self.profiles[1:]:
            with contextlib.suppress(TypeError):  # a profile with nothing recorded
                stats.add(profile)
        return stats


class AsgiClient:
    """Requests through ``config.asgi.application`` on one event loop kept for the whole run."""

    def __init__(self, session_id: str, csrf: str) -> None:
        import asyncio

        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        from config.asgi import application

        self.application = application
        self.headers = [
            (b"host", b"127.0.0.1"),
            (b"cookie", f"sessionid={session_id}; csrftoken={csrf}".encode()),
            (b"x-csrftoken", csrf.encode()),
            (b"referer", b"http://127.0.0.1/"),
        ]

    def get(self, path: str):
        return self.loop.run_until_complete(self._request("GET", path, b""))

    def post(self, path: str, data, content_type: str):
        import json

        body = json.dumps(data).encode()
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        return self.loop.run_until_complete(self._request("POST", path, body, headers))

    async def _request(self, method: str, path: str, body: bytes, extra=()):
        import asyncio
        import json

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [*self.headers, *extra],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        sent = asyncio.Event()
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status, chunks = 0, []

        async def receive():
            if messages:
                return messages.pop()
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    sent.set()

        await self.application(scope, receive, send)
        content = b"".join(chunks)

        class Response:
            status_code = status

            def json(self):
                return json.loads(content)

        Response.content = content
        return Response()


def _post(client, body) -> None:
    response = client.post("/api/v1/orders", data=body, content_type="application/json")
    if response.status_code != 201 or response.json()["status"] != "FILLED":
        raise SystemExit(f"order not filled: {response.status_code} {response.content[:300]!r}")


if __name__ == "__main__":
    main()
