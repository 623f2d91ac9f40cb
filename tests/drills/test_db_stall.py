"""Drill: the database stalls for 5 seconds under a load of orders.

The served terminal (gunicorn, uvicorn workers) reaches a fresh database on the shared PostgreSQL
through a TCP proxy of the drill's own; mid-load the proxy stops forwarding (every byte held, every
socket open) for STALL_SECONDS, then forwards again. Clients place paper MARKET orders through the
API, each under its Idempotency-Key, and send again under the same key when the outcome is unknown.

Afterwards: every request ended in a result or an error with a body, none later than the stall plus
a generous bound; every acknowledged order is found exactly once and in a final state with its
trades; positions equal the sum of trades; the audit chains verify; the order book and positions the
API shows equal the database; and orders succeed again after the stall (recovery time printed).
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.drills.dbfaults import OUT, Load, TcpProxy, check, make_world, served, write_numbers

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]

STALL_SECONDS = 5.0
CLIENTS = 6
ACCOUNTS_PER_CLIENT = 2
# A request may wait out the stall; anything much longer is a hang, not a slow answer.
HANG_SECONDS = STALL_SECONDS + 20


@pytest.fixture
def stall_database():
    """A fresh database on the shared server (never the shared server stalled: only the proxy is)."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_stall"
    admin = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url, name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_five_second_database_stall_loses_no_order_and_the_terminal_recovers(stall_database):
    url, name = stall_database
    direct = urlunsplit(url._replace(path=f"/{name}"))
    port = url.port or 5432
    with TcpProxy(port, target_host=url.hostname or "127.0.0.1") as proxy:
        credentials = url.netloc.rsplit("@", 1)[0] + "@" if "@" in url.netloc else ""
        proxied = urlunsplit(url._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}", path=f"/{name}"))
        var = OUT / "db_stall"
        with served(var, proxied) as base:
            sessions, bodies = make_world(var, direct, CLIENTS, ACCOUNTS_PER_CLIENT)
            load = Load("db-stall", int(urlsplit(base).port or 80), sessions, bodies).start()
            time.sleep(2)
            before = load.acknowledged_count()
            stalled_at = time.monotonic()
            proxy.stall()
            time.sleep(STALL_SECONDS)
            resumed_at = time.monotonic()
            proxy.resume()
            time.sleep(3)
            load.stop()
            recovered_at = load.first_success_after(resumed_at)
            load.ledger.recovery_seconds = None if recovered_at is None else recovered_at - resumed_at
            verdict = check(load, var, direct)

    answers = load.answers
    during = load.outcomes(stalled_at, resumed_at + 0.5)
    longest = max(a.answered_at - a.sent_at for a in answers)
    bodiless = [a for a in answers if a.code == "no body"]
    server_errors = [a for a in answers if a.status is not None and a.status >= 500]
    unanswered = [a for a in answers if a.status is None]
    first_new = load.first_success_after(resumed_at)
    lines = [
        verdict.tally.line(),
        f"stall {STALL_SECONDS:.0f} s after {before} acknowledged orders; answers ending in the stall or 0.5 s after "
        f"it: {dict(during)}",
        f"longest request {longest:.2f} s; 5xx answers {len(server_errors)} "
        f"({sorted({f'{a.status} {a.code}' for a in server_errors})}); without a body {len(bodiless)}; "
        f"no answer {len(unanswered)}",
        f"recovery: first acknowledged order {first_new - resumed_at:.2f} s after the stall ended"
        if first_new is not None
        else "recovery: no order acknowledged after the stall",
        f"orders half-written {len(verdict.half_written)}; positions not equal to trades {len(verdict.positions_off)}; "
        f"audit: {verdict.audit}; pages differing from the database {len(verdict.page_off)}",
    ]
    write_numbers("db_stall", lines)
    summary = "\n".join(lines)
    assert not bodiless, f"{summary}\n{bodiless[:3]}"
    assert not [a for a in server_errors if a.code != "database_unavailable"], summary
    assert longest < HANG_SECONDS, f"a request hung {longest:.1f} s\n{summary}"
    assert recovered_at is not None, summary
    assert not verdict.problems(), f"{summary}\n" + "\n".join(verdict.problems())
    verdict.tally.assert_whole()
