"""Audit append throughput on PostgreSQL against a plain INSERT of rows of the same size.

    DATABASE_URL=postgres://... python bench/audit_append.py [--events 4000] [--writers 1,8] [--rounds 5]

Runs in a throwaway database (test_<name>, created and dropped here), because audit rows can never
be deleted. For each number of concurrent writer processes it measures, in the same run:
- audit: ``audit.services.audit_record`` with a typical order payload, one transaction per event
  (the keyed link computed in Python, appended through the stored functions of migration 0005);
- baseline: a raw INSERT of the same row (same columns, same indexes, no triggers, no chain) into
  a table made with ``LIKE compliance_auditevent INCLUDING ALL``, also one transaction per row.
The two alternate for --rounds rounds; it prints the median events/s of each and the median of
the ratios of each audit run to the baseline run just before it.
Targets: at least 2,000 events/s and 0.5 of baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection, connections  # noqa: E402

from audit.chain import event_hash  # noqa: E402
from audit.services import audit_record  # noqa: E402
from core.canonical_json import canonical_dumps  # noqa: E402

TARGET_RATE, TARGET_RATIO = 2000, 0.5
PAYLOAD = {
    "account": "ZX1234",
    "exchange": "NSE",
    "symbol": "RELIANCE-EQ",
    "side": "BUY",
    "quantity": 25,
    "price": Decimal("2875.35"),
    "order_type": "LIMIT",
    "product": "MIS",
    "client_order_id": "c0ffee00-1234-4abc-9def-0123456789ab",
}


def _run_writers(writers: int, total: int, body) -> float:
    """Run ``body(writer_number, count, run_number)`` in ``writers`` processes; return events per second.

    Processes, not threads: with threads the benchmark's own Python work (canonical JSON, hashing,
    the ORM) would queue on the GIL and be measured instead of the database.
    """
    global _runs
    _runs += 1
    per_writer = total // writers
    context = multiprocessing.get_context("fork")
    start = context.Barrier(writers + 1)
    connections.close_all()  # children must open their own connections

    workers = [
        context.Process(target=_writer, args=(body, start, number, per_writer, _runs)) for number in range(writers)
    ]
    for w in workers:
        w.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a writer failed early; reported below
        start.wait(timeout=60)
    began = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} writer(s) failed (exit codes {failed})")
    return per_writer * writers / elapsed


_runs = 0


def _writer(body, start, number: int, count: int, run: int) -> None:
    try:
        connection.ensure_connection()
        start.wait(timeout=60)
        body(number, count, run)
    except BaseException:
        start.abort()
        raise
    finally:
        connections.close_all()


def _audit(number: int, count: int, run: int) -> None:
    for index in range(count):
        audit_record(
            actor=f"system:bench{number}",
            action="order.placed",
            target=("orders.order", index),
            payload=PAYLOAD,
            ip="10.0.0.1",
            request_id="bench-request-0001",
        )


def _baseline(number: int, count: int, run: int) -> None:
    from django.utils import timezone

    payload = canonical_dumps(PAYLOAD)
    fake_hash = event_hash(
        key=None,
        prev_hash="0" * 64,
        chain=0,
        seq=0,
        created_at=timezone.now(),
        actor="",
        actor_name="",
        action="",
        target_type="",
        target_id="",
        payload="",
        ip="",
        request_id="",
    )
    with connection.cursor() as cursor:
        for index in range(count):
            seq = run * 10_000_000 + index  # unique per (writer = chain, run)
            cursor.execute(
                "INSERT INTO bench_plain_event (chain, seq, created_at, actor, actor_name, action, target_type,"
                " target_id, payload, ip, request_id, prev_hash, hash, key_id)"
                " VALUES (%s, %s, %s, %s, '', %s, %s, %s, %s, %s, %s, %s, %s, 'a1')",
                [
                    number + 1,
                    seq,
                    timezone.now(),
                    f"system:bench{number}",
                    "order.placed",
                    "orders.order",
                    str(index),
                    payload,
                    "10.0.0.1",
                    "bench-request-0001",
                    fake_hash,
                    fake_hash,
                ],
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000, help="events per measurement (default 4000)")
    parser.add_argument("--writers", default="1,8", help="comma-separated writer process counts (default 1,8)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds, medians reported (default 5)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print("bench/audit_append.py measures PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2

    original_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_{original_name}"
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_plain_event (LIKE compliance_auditevent INCLUDING ALL)")
            cursor.execute("SHOW synchronous_commit")
            sync = cursor.fetchone()[0]
        print(f"PostgreSQL {connection.pg_version}, database {test_name}, synchronous_commit={sync}")
        print(f"{'writers':>7} {'audit ev/s':>11} {'baseline ev/s':>14} {'ratio':>6}")
        verdicts = []
        for writers in [int(w) for w in args.writers.split(",")]:
            _run_writers(writers, min(args.events, 200 * writers), _audit)  # warm-up
            _run_writers(writers, min(args.events, 200 * writers), _baseline)
            # Alternate the two, and compare each audit run with the baseline run just before it, so
            # that load from elsewhere on the machine, which drifts, hits both sides of a ratio alike.
            baselines, audits = [], []
            for _ in range(args.rounds):
                baselines.append(_run_writers(writers, args.events, _baseline))
                audits.append(_run_writers(writers, args.events, _audit))
            baseline, audit = statistics.median(baselines), statistics.median(audits)
            ratio = statistics.median(a / b for a, b in zip(audits, baselines, strict=True))
            verdicts.append(audit >= TARGET_RATE and ratio >= TARGET_RATIO)
            print(f"{writers:>7} {audit:>11.0f} {baseline:>14.0f} {ratio:>6.2f}")
        print(f"target: >= {TARGET_RATE} events/s and >= {TARGET_RATIO} of baseline -> ", end="")
        print("met" if all(verdicts) else "NOT met for every writer count")
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(original_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
