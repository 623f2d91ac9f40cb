"""Drill: every long-running process stops on SIGTERM by finishing or handing back its work.

- The web tier (gunicorn, uvicorn workers): orders in flight when the master gets SIGTERM (each held
  by the broker, the local Kite server answering after a delay) are all answered; the page's socket is
  closed with a code the page reconnects after (not one of its final ones); the master exits 0.
- A Celery worker (threads pool, as deploy/k8s/base/workers.yaml runs them; acks_late, prefetch 1):
  the task it runs when told to stop finishes before it exits; the task still queued stays in the
  queue and the next worker runs it.
- ``manage.py run_broker_streams``: what its stream received is in the durable inbox; on SIGTERM it
  closes the stream (a normal close, 1000) and exits 0.
``manage.py run_feed`` and ``manage.py run_strategies`` have theirs in tests/marketdata/test_run_feed.py
and tests/strategies/test_tick_runner.py (a real process, SIGTERM, exit 0, leases given up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.drills import webtier
from tests.drills.ledger import Ledger, orders_for_keys

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]

FINAL_CLOSES = {4401, 4429}  # static/js/terminal.js stops reconnecting after these


def _wait_for(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.django_db(transaction=True)
def test_a_web_tier_told_to_stop_answers_the_orders_in_flight_and_exits(tmp_path):
    from bench.orders import _world
    from tests.kite.fake_kite import FakeKite

    latency = 2.0
    sessions, _paper, kite_bodies = _world(4, 1, kite=True)
    fake = FakeKite(latency=latency).start()
    web = webtier.Web("web-sigterm", tmp_path, workers=1, env={"KITE_API_ROOT": fake.url})
    ledger = Ledger("web SIGTERM")
    closes: list[int] = []
    try:
        web.wait_ready()
        page = webtier.UserSocket(web.url, sessions[0][0], reconnect_after=60).start()
        clients = [webtier.OrderClient(web.port, sessions[i], kite_bodies[i], ledger, attempts=1) for i in range(4)]
        for client in clients:
            client.connect()
        answers: list[tuple[int | None, float]] = []
        started = time.monotonic()

        def place(client) -> None:
            _key, status, _body = client.place()
            answers.append((status, time.monotonic() - started))

        threads = [threading.Thread(target=place, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        time.sleep(latency / 3)  # every order is now waiting on the broker
        web.process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        for thread in threads:
            thread.join(60)
        exit_code = web.process.wait(60)
        stop_seconds = time.monotonic() - stopped_at
        if page.socket is not None and page.socket.close_code is not None:
            closes.append(page.socket.close_code)
        page.stop()
        rows = orders_for_keys(ledger.sent)
        tally = ledger.tally(rows)
        lines = [
            tally.line(),
            f"web SIGTERM: {len(clients)} orders in flight (broker latency {latency:.1f} s), answered "
            f"{sorted(status for status, _ in answers if status is not None)}, last answer "
            f"{max(t for _, t in answers):.2f} s after sending; master exit code {exit_code} "
            f"{stop_seconds:.2f} s after SIGTERM; page socket closed with {closes}",
        ]
        webtier.report("graceful_web", lines)
        tally.assert_whole()
        assert all(status is not None and 200 <= status < 300 for status, _ in answers), (lines, ledger.failed)
        assert exit_code == 0, web.log()[-3000:]
        assert closes and closes[0] not in FINAL_CLOSES, lines
    finally:
        web.stop()
        fake.stop()


def _celery_worker(queue: str, log: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("celery")), "--app", "tests.drills.celery_drill", "worker"]
    command += ["--queues", queue, "--pool", "threads", "--concurrency", "1", "--hostname", f"{queue}@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
    with log.open("a") as out:
        return subprocess.Popen(
            command,
            cwd=webtier.ROOT,
            env=webtier.server_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen, timeout: float) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def test_a_celery_worker_told_to_stop_finishes_its_task_and_hands_the_queued_one_back(tmp_path):
    from tests.drills.celery_drill import hold

    queue = f"drills-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "celery.log"
    running, queued = tmp_path / "running", tmp_path / "queued"
    first = _celery_worker(queue, log)
    second = None
    try:
        hold.apply_async(args=[str(running), 3.0], queue=queue)
        hold.apply_async(args=[str(queued), 0.1], queue=queue)
        assert _wait_for(Path(f"{running}.started"), 60), log.read_text()[-3000:]
        stopped_at = time.monotonic()
        first_exit = _stop(first, 60)
        stop_seconds = time.monotonic() - stopped_at
        finished = Path(f"{running}.done").exists()
        queued_started_by_first = Path(f"{queued}.started").exists()
        # The next worker (the replacement pod) runs what was handed back.
        second = _celery_worker(queue, log)
        ran_by_next = _wait_for(Path(f"{queued}.done"), 60)
        second_exit = _stop(second, 60)
        lines = [
            f"celery SIGTERM: tasks sent 2; the running one finished before exit: {finished} (worker exit code "
            f"{first_exit}, {stop_seconds:.2f} s after SIGTERM); the queued one started by the stopping worker: "
            f"{queued_started_by_first}, run by the next worker: {ran_by_next} (its exit code {second_exit})",
        ]
        webtier.report("graceful_celery", lines)
        assert finished and first_exit == 0, log.read_text()[-3000:]
        assert not queued_started_by_first and ran_by_next and second_exit == 0, log.read_text()[-3000:]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


ORDER_MESSAGE = {
    "s": "ok",
    "orders": {
        "id": "25080400000101",
        "org_ord_status": 2,
        "qty": 10,
        "qty_filled": 10,
        "qty_remaining": 0,
        "price_traded": 990.0,
        "oms_msg": "TRADE CONFIRMED",
        "time_oms": "04-Aug-2025 09:15:30",
        "ordertag": "1:a1b2c3d4e5f6a7b8c9d0",
        "symbol": "NSE:RELIANCE-EQ",
    },
}


class _OrderSocket:
    """A broker's order-update websocket on loopback: sends one order message to each connection, then
    holds it open until the client closes it (and records how it was closed)."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.closed: list[int | None] = []
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, connection) -> None:
        from websockets.exceptions import ConnectionClosed

        connection.send(json.dumps(ORDER_MESSAGE))
        try:
            for _message in connection:
                pass
        except ConnectionClosed:
            pass
        self.closed.append(connection.close_code)

    def stop(self) -> None:
        self.server.shutdown()


def _signed_in_fyers_account():
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Organisation
    from brokers.models import BrokerAccount
    from brokers.services.credentials import broker_credentials_set
    from brokers.services.sessions import session_start

    org = Organisation.objects.create(name="Streams", slug="streams")
    account = BrokerAccount.objects.create(organisation=org, label="f1", broker="fyers", client_code="F1")
    broker_credentials_set(
        account=account, credentials={"app_id": "APP-100", "secret_key": "secret", "redirect_uri": "http://127.0.0.1/"}
    )
    session_start(account=account, secrets={"access_token": "token"}, expires_at=timezone.now() + timedelta(hours=8))
    return account


@pytest.mark.django_db(transaction=True)
def test_run_broker_streams_hands_what_it_received_to_the_inbox_and_stops_on_sigterm(tmp_path):
    from brokers.models import InboundUpdate

    account = _signed_in_fyers_account()
    broker = _OrderSocket()
    endpoints = {"fyers": {"order_ws": f"ws://127.0.0.1:{broker.port}/trade/v3"}}
    env = webtier.server_env(
        {"DJANGO_SETTINGS_MODULE": "tests.drills.stream_settings", "DRILL_BROKER_ENDPOINTS": json.dumps(endpoints)}
    )
    log = tmp_path / "streams.log"
    command = [sys.executable, "manage.py", "run_broker_streams", "--interval", "1"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=webtier.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not InboundUpdate.objects.filter(account_id=account.pk).exists():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        stopped_at = time.monotonic()
        exit_code = _stop(process, 30)
        stop_seconds = time.monotonic() - stopped_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        broker.stop()
    output = log.read_text()
    received = InboundUpdate.objects.filter(account_id=account.pk).count()
    webtier.report(
        "graceful_streams",
        [
            f"run_broker_streams SIGTERM: 1 order stream, updates in the inbox {received}; exit code {exit_code} "
            f"{stop_seconds:.2f} s after SIGTERM; the broker's socket closed by the client with {broker.closed}"
        ],
    )
    assert exit_code == 0, output
    assert "Started the order stream of f1 (fyers)." in output and "Stopped 1 order stream(s)." in output
    assert received == 1 and broker.closed == [1000], output
