"""The served terminal pointed at the local Kite server, for the broker drills.

``served_terminal`` starts the production web command (gunicorn's uvicorn workers, bench/orders.py's
``_start_server``) on the test database with ``KITE_API_ROOT`` at a ``FakeKite``, and a Celery worker
of the ``orders`` queue (the reconcile tasks the web tier queues), both in processes of their own.
``Trader`` is one user's keep-alive HTTP connection with a two-factor session; ``kite_world`` makes
the firm, its trader and its Kite accounts signed in to the local Kite server.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
ORDER_ROW = re.compile(r'<tr id="order-(\d+)" class="order-row status-([a-z_]+)"')


@dataclass
class KiteWorld:
    org: object
    user: object
    accounts: list
    instrument: object
    session: tuple[str, str]  # session key, CSRF token


def kite_world(*, accounts: int, fake_url: str) -> KiteWorld:
    """A firm with one trader, ``accounts`` Kite accounts signed in to the local Kite server, and
    RELIANCE mapped to the server's token and quoted at 1000 (in the shared quote store, Redis)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from guardian.shortcuts import assign_perm

    from accounts.models import Membership, Organisation, Role, User
    from bench.orders_kite import signed_in_kite_accounts
    from marketdata.models import Instrument
    from marketdata.quotes import DepthLevel, Quote, set_quotes
    from tests.kite.mapping import map_for_kite

    org = Organisation.objects.create(name="Drill", slug="drill")
    user = User.objects.create_user("drill-trader")
    Membership.objects.create(user=user, organisation=org, role=Role.OWNER)
    kite_accounts = signed_in_kite_accounts(org, 0, accounts)
    for account in kite_accounts:
        assign_perm("brokers.trade_brokeraccount", user, account)
        assign_perm("brokers.view_brokeraccount", user, account)
    instrument = Instrument.objects.create(
        exchange="NSE",
        segment="NSE",
        tradingsymbol="RELIANCE",
        exchange_token="2885",
        instrument_type="EQ",
        lot_size=1,
        tick_size=Decimal("0.05"),
    )
    map_for_kite(instrument, token=738561)  # the local Kite server's token for NSE:RELIANCE
    set_quotes(
        [
            Quote(
                instrument_id=instrument.pk,
                ltp=Decimal("1000"),
                ts=timezone.now(),
                bid=Decimal("999.95"),
                ask=Decimal("1000.05"),
                bids=(DepthLevel(Decimal("999.95"), 1_000_000),),
                asks=(DepthLevel(Decimal("1000.05"), 1_000_000),),
            )
        ]
    )
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    device = TOTPDevice.objects.create(user=user, name="drill", confirmed=True)
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id  # the session passed the second factor
    store.create()
    return KiteWorld(org, user, kite_accounts, instrument, (store.session_key, secrets.token_hex(16)))


def _database_url(database: str) -> str:
    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path=f"/{database}"))


def _purge_orders_queue() -> None:
    """Forget the ``orders`` queue's messages on this Redis database (a previous run's reconcile tasks
    name orders of a database that is gone)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("orders", "unacked", "unacked_index")


@contextmanager
def served_terminal(database: str, *, fake_url: str, log_dir: Path) -> Iterator[int]:
    """Serve the terminal on ``database`` with Kite at ``fake_url`` and a Celery worker of the orders
    queue; yield the web server's port."""
    from bench.orders import _free_port, _start_server

    _purge_orders_queue()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(database),
        "KITE_API_ROOT": fake_url,
        "LOG_LEVEL": "WARNING",
        "RMS_DEFAULT_OPS_LIMIT": "1000000",
    }
    celery = str(Path(sys.executable).with_name("celery"))
    with (log_dir / "celery.log").open("w") as log:
        worker = subprocess.Popen(
            [celery, "--app", "config", "worker", "--queues", "orders", "--pool", "solo", "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = None
    try:
        port = _free_port()
        server, _workers = _start_server(port, database, 1, {"KITE_API_ROOT": fake_url})
        yield port
    finally:
        for process in (server, worker):
            if process is not None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


class Trader:
    """One keep-alive connection to the served terminal with the world's session."""

    def __init__(self, port: int, session: tuple[str, str], *, timeout: float = 30.0) -> None:
        self.port = port
        session_id, csrf = session
        self.headers = {
            "Cookie": f"sessionid={session_id}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Referer": f"http://127.0.0.1:{port}/",
        }
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """Return (status, text); a failed connection is opened again once for the next request."""
        payload = json.dumps(body).encode() if body is not None else None
        sent = {**self.headers, **(headers or {})}
        if payload is not None:
            sent["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=payload, headers=sent)
            response = self.connection.getresponse()
            text = response.read().decode()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            raise
        if response.will_close:
            self.connection.close()
        return response.status, text

    def place(self, body: dict, key: str):
        """POST /api/v1/orders under the idempotency key; return (status, the answer's JSON or None)."""
        status, text = self.request("POST", "/api/v1/orders", body, {"Idempotency-Key": key})
        try:
            return status, json.loads(text)
        except ValueError:
            return status, None

    def order_book_statuses(self, account_id: int) -> dict[int, str]:
        """The order book panel as the page renders it: order id -> the status class of its row."""
        status, text = self.request("GET", f"/trading/{account_id}/panels/orders/")
        assert status == 200, f"the order book panel answered {status}: {text[:300]}"
        return {int(order_id): status for order_id, status in ORDER_ROW.findall(text)}

    def close(self) -> None:
        self.connection.close()


def kite_counts_by_tag(fake) -> Counter:
    """How many orders the local Kite server's book holds per tag."""
    with fake._lock:
        return Counter(order["tag"] for order in fake.orders.values() if order.get("tag"))


def truth_mismatches(fake, rows) -> list[str]:
    """Orders whose status in the terminal is not the broker's truth: an order the broker holds must
    show the broker's status (``kite.adapter.status_of``) and its order id; one it never received
    must be REJECTED."""
    from kite.adapter import status_of

    with fake._lock:
        book = {order["tag"]: dict(order) for order in fake.orders.values() if order.get("tag")}
    wrong = []
    for row in rows:
        found = book.get(row.broker_tag)
        if found is None:
            if row.status != "REJECTED":
                wrong.append(f"tag {row.broker_tag}: {row.status}, the broker never received it")
            continue
        expected = status_of(found["status"], current=row.status)
        if row.status != expected or row.broker_order_id != found["order_id"]:
            wrong.append(
                f"tag {row.broker_tag}: {row.status} {row.broker_order_id or '-'}, "
                f"the broker has {expected} {found['order_id']}"
            )
    return wrong


def write_numbers(name: str, lines: list[str]) -> Path:
    """Write a drill's numbers to ``var/drills/<name>.txt`` (read after the run) and print them."""
    path = ROOT / "var" / "drills" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    for line in lines:
        print(line, flush=True)
    return path


def wait_for(condition, *, timeout: float, message: str, interval: float = 0.2):
    """Poll ``condition`` until it returns something true; fail after ``timeout`` (a hang, not a measure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


def start_feed(database: str, *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``manage.py run_feed`` (its own process, as deployed) on ``database`` with the extra ``env``;
    its log (JSON lines) goes to ``log_path``, appended."""
    environ = {
        **os.environ,
        "DATABASE_URL": _database_url(database),
        "LOG_LEVEL": "INFO",
        "MARKETDATA_FEED_METRICS_PORT": "0",
        **env,
    }
    with log_path.open("a") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_feed", "--metrics-port", "0"],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_process(process: subprocess.Popen, *, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def log_records(log_path: Path, needle: str) -> list[dict]:
    """The JSON log records of ``log_path`` whose message contains ``needle``."""
    records = []
    for line in log_path.read_text(errors="replace").splitlines():
        if needle in line and line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
