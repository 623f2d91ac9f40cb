"""Drill: a web worker killed (SIGKILL) with requests and pushes in flight.

Two gunicorn uvicorn workers serve orders to several traders, each sending with an
``Idempotency-Key`` and retrying on a connection error with the same key. One trader's page socket
(``/ws/user/``) and its order connection are on the same worker; right after that worker answers
the trader's order (its push still in the worker's queue) it is killed with SIGKILL. Then:

- every client sees an answer or an error, never silence: after retries every key maps to exactly
  one order (the ledger: nothing lost, nothing duplicated) and the paper exchange holds each once;
- the trader's socket reconnects (to whichever worker) with its last sequence number and gets the
  order's current state from the journal (infra.push), though the push that carried it died with
  the worker; at the end the rows it shows match the database for every order the trader placed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.drills import webtier
from tests.drills.ledger import Ledger, orders_for_keys, paper_counts_by_tag

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(240),
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 6  # trader 0 is watched; the others are the load
LOAD_SECONDS_BEFORE, LOAD_SECONDS_AFTER = 2.0, 3.0


def _wait(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_a_worker_killed_with_requests_and_pushes_in_flight_loses_and_duplicates_nothing(tmp_path):
    sessions, bodies, users = webtier.world(CLIENTS, accounts_per_client=2)
    web = webtier.Web("web-kill", tmp_path, workers=2)
    ledger = Ledger("web worker SIGKILL")
    watched = None
    try:
        web.wait_ready()
        workers = web.workers()
        assert len(workers) == 2, web.log()
        # Trader 0's page socket and order connection on one worker: the one to be killed.
        watched = webtier.UserSocket(web.url, sessions[0][0]).start()
        victim = None
        assert _wait(lambda: webtier.holder_of(watched.socket.socket, workers) is not None, 5)
        victim = webtier.holder_of(watched.socket.socket, workers)
        trader = webtier.OrderClient(web.port, sessions[0], bodies[0], ledger)
        for _ in range(40):  # the kernel gives a new connection to whichever worker accepts first
            if webtier.holder_of(trader.connect().sock, workers) == victim:
                break
            trader.drop()
        assert webtier.holder_of(trader.connect().sock, workers) == victim, "no connection reached the worker"
        load = [webtier.OrderClient(web.port, sessions[i], bodies[i], ledger) for i in range(1, CLIENTS)]
        with webtier.running(load):
            time.sleep(LOAD_SECONDS_BEFORE)
            _key, status, answer = trader.place()
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            assert status is not None and 200 <= status < 300, (status, answer)
            marker = int(answer["id"])
            live_before_kill = marker in watched.view()
            # The page shows the order once its socket is back, from the journal.
            assert _wait(lambda: marker in watched.view() and watched.connects > 1, 30), (
                f"the order never reached the reconnected page; socket connects {watched.connects}\n{web.log()[-3000:]}"
            )
            recovery = time.monotonic() - killed_at
            time.sleep(LOAD_SECONDS_AFTER)
            for _ in range(3):  # the page keeps receiving live after the reconnect
                trader.place()
        trader.drop()
        respawned = [pid for pid in web.workers() if pid not in workers]
        truth = webtier.book_truth(users[0])
        # Settled: every order of trader 0 shows its database state (live, or replayed within a gap check).
        settled = _wait(lambda: watched.view() == truth, 10, 0.2)
        ledger.recovery_seconds = recovery
        tally = ledger.tally(
            orders_for_keys(ledger.sent),
            paper_counts_by_tag([row.broker_tag for row in orders_for_keys(ledger.sent)]),
        )
        # Resent under their key: after an error, or at once when a kept-alive connection was found dead.
        retries = sum(client.retries + client.stale for client in [trader, *load])
        lines = [
            tally.line(),
            f"web worker SIGKILL: worker {victim} killed under load of {CLIENTS - 1} clients; respawned {respawned}; "
            f"requests retried with their key {retries}; order pushed before the kill: {live_before_kill}",
            f"web worker SIGKILL: page socket reconnects {watched.connects - 1}, order shown {recovery:.2f} s after "
            f"the kill; page rows {len(watched.view())}, database {len(truth)}, matching: {settled}",
        ]
        webtier.report("web_kill", lines)
        tally.assert_whole()
        assert tally.failed == 0, lines
        assert settled, f"page {watched.view()} != database {truth}"
    finally:
        if watched is not None:
            watched.stop()
        web.stop()
