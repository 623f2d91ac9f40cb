"""Broker fault drill: the link to Kite fails under a load of orders through the served API.

The served terminal (gunicorn's uvicorn workers, a Celery worker of the orders queue) places orders
at the local Kite server (tests/kite/fake_kite.py) while the drill injects, among them:

- the connection dropped after Kite read the order and before it answered, the order NOT recorded;
- the same, the order recorded at Kite (the answer is lost);
- a timeout after acceptance: Kite records the order and answers after the client's read timeout.

Each such order must come back UNKNOWN (the terminal cannot tell), and reconciliation (the task the
web tier queues, run by the worker) must settle it to Kite's truth, found by its tag: OPEN with Kite's
order id when Kite has it, REJECTED when it never arrived (the first read of Kite's order book is
dropped as well: the task tries again). A client that retries an order it saw
UNKNOWN, under the same idempotency key, gets the same order back and sends nothing. Afterwards: no
order lost or duplicated (the terminal's rows by idempotency key, Kite's book by tag), every order at
the broker's status, and the order book page shows each order's final status.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from orders.models import Order
from tests.drills.ledger import Ledger, orders_for_keys
from tests.drills.served_kite import (
    Trader,
    kite_counts_by_tag,
    kite_world,
    served_terminal,
    truth_mismatches,
    wait_for,
    write_numbers,
)
from tests.kite.fake_kite import FakeKite

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(300),
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 6
ORDERS_PER_CLIENT = 20
ACCOUNTS = 3
# (name, FakeKite.lose_answer arguments): each injected FAULT_REPEATS times, spread over the load.
FAULTS = (
    ("dropped before recording", {"drop": True, "process": False}),
    ("dropped after recording", {"drop": True, "process": True}),
    ("timeout after acceptance", {"drop": False, "process": True}),
)
FAULT_REPEATS = 3
FIRST_FAULT_AT = 8  # orders Kite has received before the first fault; then one fault every FAULT_EVERY
FAULT_EVERY = 10


def _inject(fake: FakeKite, stop: threading.Event, injected: list[tuple[float, str]]) -> None:
    """Add each fault once Kite has received enough orders (so faults fall among the load)."""
    plan = [name for _ in range(FAULT_REPEATS) for name, _ in FAULTS]
    arguments = dict(FAULTS)
    for index, name in enumerate(plan):
        due = FIRST_FAULT_AT + index * FAULT_EVERY
        while fake.count("POST", "/orders/regular") < due:
            if stop.wait(0.01):
                return
        fake.lose_answer(method="POST", path="/orders/", **arguments[name])
        injected.append((time.monotonic(), name))


def _client(i: int, port: int, world, ledger: Ledger, retried: list, errors: list) -> None:
    trader = Trader(port, world.session)
    try:
        for n in range(ORDERS_PER_CLIENT):
            key = f"drill-kite-{i}-{n}"
            body = {
                "account_id": world.accounts[(i + n) % ACCOUNTS].pk,
                "instrument_id": world.instrument.pk,
                "side": "BUY" if n % 2 == 0 else "SELL",
                "quantity": 1,
                "order_type": "LIMIT",
                "price": "999.00" if n % 2 == 0 else "1001.00",
                "product": "MIS",
            }
            ledger.send(key)
            try:
                status, answer = trader.place(body, key)
            except Exception as error:  # the terminal's answer never came: the order's fate is unknown
                ledger.fail(key, repr(error))
                continue
            ledger.record(key, status, answer)
            if status != 201:
                errors.append(f"{key}: HTTP {status} {answer}")
                continue
            if answer.get("status") == "UNKNOWN":
                # A client that saw an unknown outcome sends the same order again under the same key.
                again_status, again = trader.place(body, key)
                same = again_status == 201 and again and again["client_order_id"] == answer["client_order_id"]
                retried.append((key, bool(same)))
    finally:
        trader.close()


def test_a_dropped_broker_link_and_a_timeout_after_acceptance_lose_and_duplicate_no_order(tmp_path):
    fake = FakeKite(hang_seconds=10.0).start()  # longer than the Kite client's 7 s read timeout
    try:
        world = kite_world(accounts=ACCOUNTS, fake_url=fake.url)
        database = connection.settings_dict["NAME"]
        ledger = Ledger("broker faults (Kite)")
        retried: list[tuple[str, bool]] = []
        errors: list[str] = []
        injected: list[tuple[float, str]] = []
        with served_terminal(database, fake_url=fake.url, log_dir=tmp_path) as port:
            # The first read of Kite's order book (the first reconciliation's) is dropped too: the task retries.
            fake.lose_answer(method="GET", path="/orders", drop=True)
            stop = threading.Event()
            injector = threading.Thread(target=_inject, args=(fake, stop, injected), daemon=True)
            injector.start()
            started = time.monotonic()
            clients = [
                threading.Thread(target=_client, args=(i, port, world, ledger, retried, errors)) for i in range(CLIENTS)
            ]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join(180)
            load_seconds = time.monotonic() - started
            stop.set()
            injector.join(5)
            keys = sorted(ledger.sent)
            unknown_after_load = Order.objects.filter(idempotency_key__in=keys, status="UNKNOWN").count()

            def settled():
                rows = orders_for_keys(keys)
                pending = [r for r in rows if r.status in {"UNKNOWN", "PENDING"}]
                return rows if not pending and not truth_mismatches(fake, rows) else None

            try:
                rows = wait_for(settled, timeout=90, message="every order settled at the broker's truth")
            except AssertionError:
                rows = orders_for_keys(keys)
            recovered = time.monotonic()
            ledger.recovery_seconds = recovered - injected[0][0] if injected else None
            trader = Trader(port, world.session)
            shown: dict[int, str] = {}
            for account in world.accounts:
                shown.update(trader.order_book_statuses(account.pk))
            trader.close()
        ids = dict(Order.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", "pk"))
        page_wrong = [
            f"order {ids[r.idempotency_key]} {r.status}: the page shows {shown.get(ids[r.idempotency_key])}"
            for r in rows
            if shown.get(ids[r.idempotency_key]) != r.status.lower()
        ]
        tally = ledger.tally(rows, kite_counts_by_tag(fake))
        wrong = truth_mismatches(fake, rows)
        statuses: dict[str, int] = {}
        for row in rows:
            statuses[row.status] = statuses.get(row.status, 0) + 1
        lines = [
            tally.line(),
            f"faults injected {len(injected)} ({', '.join(f'{name} x{FAULT_REPEATS}' for name, _ in FAULTS)}); "
            f"UNKNOWN after the load {unknown_after_load}; load {load_seconds:.1f} s",
            f"client retries under the same key {len(retried)}, answered with the same order "
            f"{sum(same for _, same in retried)}; Kite order book reads {fake.count('GET', '/orders')} "
            "(the first dropped)",
            f"Kite's book {sum(kite_counts_by_tag(fake).values())} orders; final statuses "
            + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items())),
            f"not at the broker's truth {len(wrong)}; order book page rows wrong {len(page_wrong)}; "
            f"errors {len(errors)}",
        ]
        write_numbers("broker_faults", lines)
        tally.assert_whole()
        message = "\n".join(lines)
        assert len(injected) == len(FAULTS) * FAULT_REPEATS, message
        assert unknown_after_load >= 1, f"no fault left an order UNKNOWN: the drill injected nothing\n{message}"
        assert all(same for _, same in retried), f"a retry under the same key was another order\n{message}"
        assert not wrong, f"{message}\n" + "\n".join(wrong[:10])
        assert not page_wrong, f"{message}\n" + "\n".join(page_wrong[:10])
        assert not errors, f"{message}\n" + "\n".join(errors[:10])
        assert tally.sent == tally.acknowledged == tally.found == CLIENTS * ORDERS_PER_CLIENT, message
    finally:
        fake.stop()
