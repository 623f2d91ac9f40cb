"""A burst of bad Authorization headers against the real server (gunicorn's uvicorn workers on
loopback, tests/served.py): the audit trail in its SQLite database holds a handful of rows."""

from __future__ import annotations

import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from tests.served import PRODUCTION_ENV, fetch, serve

BURST = 2000
WINDOW = 15


def _audit(var) -> list[tuple[str, dict]]:
    with sqlite3.connect(var / "terminal.sqlite3") as db:
        rows = db.execute(
            "SELECT action, payload FROM compliance_auditevent WHERE action LIKE 'auth.%' ORDER BY id"
        ).fetchall()
    return [(action, json.loads(payload)) for action, payload in rows]


def test_a_burst_of_bad_bearer_tokens_leaves_a_handful_of_audit_rows(tmp_path):
    env = {**PRODUCTION_ENV, "AUTH_FAILURE_WINDOW_SECONDS": str(WINDOW), "AUTH_FAILURE_LIMIT": "20"}
    with serve(tmp_path, env=env) as url:

        def bad(i: int) -> tuple[int, str]:
            status, headers, _body = fetch(f"{url}/api/accounts/me", headers={"Authorization": f"Bearer junk.{i}"})
            return status, headers.get("Retry-After", "")

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(bad, range(BURST)))
        assert time.monotonic() - started < WINDOW, "the burst must fit in one window"
        assert sum(status == 401 for status, _ in answers) == 20
        refused = [retry for status, retry in answers if status == 429]
        assert len(refused) == BURST - 20 and all(1 <= int(r) <= WINDOW for r in refused)
        time.sleep(max(0.0, started + WINDOW + 0.5 - time.monotonic()))
        # The next failure after the window writes its aggregate (no beat runs beside this server).
        assert fetch(f"{url}/api/accounts/me", headers={"Authorization": "Bearer late"})[0] == 401
    rows = _audit(tmp_path)
    assert [action for action, _ in rows] == ["auth.token_denied", "auth.denied_repeated", "auth.token_denied"]
    aggregate = rows[1][1]
    assert aggregate["attempts"] == BURST and aggregate["count"] == 20 and aggregate["refused"] == BURST - 20
    assert aggregate["source"] == "127.0.0.1" and "junk" not in json.dumps(aggregate)
