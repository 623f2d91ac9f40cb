"""The order-flow kill -9 drill: a real Celery worker killed while it applies broker updates, under load.

Orders arrive through the served API (gunicorn) for Kite accounts; the local Kite server fills each
MARKET order and its postback comes back to the served terminal, which stores it in the durable inbox
(``brokers.services.inbox``) and queues a drain. A real worker (``celery --app config worker`` on the
``orders`` and ``default`` queues, prefork, on the drill's own redis-server) drains the inbox and
runs the reconciliations that fetch each fill from Kite. Its first drain waits for a backlog of 40
postbacks, applies them and stops before the rows are marked applied (``tests.drills.worker_hooks``); the
whole worker is then killed with SIGKILL while orders and postbacks keep arriving, and a new worker
starts. The drain task (``acks_late``) is delivered again to the new worker, which applies the batch a
second time: every update must still count once.

Checked afterwards: no order lost or duplicated (the ledger, against the Kite server's book by tag);
every order FILLED with exactly one trade, the Kite server's; every position equal to the sum of its
trades; every inbox row applied; the killed task redelivered; the audit chain whole; and the served
API's order book and positions (what the trader sees) showing the same.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from django.db.models import Count

from audit.verification import verify_chains
from brokers.models import InboundUpdate
from orders.models import Order, Position, Trade
from tests.drills.ledger import Ledger, orders_for_keys
from tests.drills.workers import ROOT, Worker, drill_env, own_redis, served, wait_for
from tests.drills.world import OrderClient, market_order, trader, write_quote
from tests.kite.fake_kite import FakeKite

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

CLIENTS = 4  # one Kite account each: at most 10 orders/s per account (Kite's limit, the served limiter's)
PAUSE = 0.25  # seconds between one client's orders
DOWN_SECONDS = 2.0  # from the kill to the new worker's start
BACKLOG = 40  # postbacks pending before the first drain applies them and stops
# Seconds before Redis delivers a task taken and never acknowledged again. Longer than the held drain
# lives before the kill (else its own worker is given it again while it still runs), far shorter than
# production's hour so that the drill sees the redelivery.
VISIBILITY_TIMEOUT = 20


class _Watch(threading.Event):
    at = 0.0


def _watch(condition) -> _Watch:
    """Poll ``condition`` (on its own database connection) until it holds; the event records when."""
    from django.db import connection

    done = _Watch()

    def poll() -> None:
        try:
            while not condition():
                time.sleep(0.1)
            done.at = time.monotonic()
            done.set()
        finally:
            connection.close()

    threading.Thread(target=poll, daemon=True).start()
    return done


def _kite_counts(fake: FakeKite, tags: list[str]) -> dict[str, int]:
    with fake._lock:
        held = Counter(order.get("tag") for order in fake.orders.values())
    return {tag: held.get(tag, 0) for tag in tags}


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_drain_loses_and_repeats_no_update(tmp_path: Path):
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run = uuid.uuid4().hex[:8]
    world = trader(f"kill{run}", kite=CLIENTS)
    fake = FakeKite().start()
    ledger = Ledger("worker kill -9 mid-drain")
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with own_redis(tmp_path) as redis_server:
        write_quote(redis_server.url(), world.instrument)
        env = drill_env(redis_server.url(), KITE_API_ROOT=fake.url, DRILL_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))
        pause = tmp_path / "pause"
        pause.mkdir()
        workers: list[Worker] = []
        try:
            with served(env, tmp_path / "gunicorn.log") as (url, _server):
                # The first worker holds its first drain until a backlog of postbacks is pending.
                first = Worker(
                    "first", {**env, "DRILL_PAUSE_DIR": str(pause), "DRILL_PAUSE_BACKLOG": str(BACKLOG)}, tmp_path
                )
                workers.append(first)
                first.wait_ready()
                stop = threading.Event()
                postbacks: Counter[str] = Counter()

                def client(i: int) -> None:
                    account = world.kite[i]
                    orders = OrderClient(url, world, ledger)
                    hook = httpx.Client(base_url=url, timeout=10)
                    n = 0
                    try:
                        while not stop.is_set():
                            status, body = orders.place(f"{run}-{i}-{n}", market_order(account, world.instrument, n), 0)
                            if status == 201 and body and body.get("broker_order_id"):
                                # Kite's postback for the order as its book holds it now: filled.
                                payload = fake.postback(body["broker_order_id"], user_id=account.client_code)
                                try:
                                    answer = hook.post("/brokers/kite/postback/", content=payload)
                                    postbacks[str(answer.status_code)] += 1
                                except httpx.HTTPError as error:
                                    postbacks[type(error).__name__] += 1
                            n += 1
                            time.sleep(PAUSE)
                    finally:
                        orders.close()
                        hook.close()

                threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
                started = time.monotonic()
                for thread in threads:
                    thread.start()
                try:
                    wait_for((pause / "paused").exists, seconds=90, what="drain paused after applying")
                    paused = json.loads((pause / "paused").read_text())
                    time.sleep(1.0)  # orders and postbacks keep coming while the drain hangs
                    before_kill = InboundUpdate.objects.order_by("-pk").values_list("pk", flat=True).first()
                    first.kill()
                    killed_at = time.monotonic()
                    unmarked = InboundUpdate.objects.filter(pk__in=paused["row_ids"], applied_at__isnull=True).count()
                    recovered = _watch(
                        lambda: not InboundUpdate.objects.filter(pk__lte=before_kill, applied_at__isnull=True).exists()
                    )
                    say(
                        f"killed worker {first.process.pid} (kill -9 of its process group) "
                        f"{killed_at - started:.1f} s into the load, in task {paused['task_id']} after applying "
                        f"{paused['updates']} updates (rows {paused['row_ids'][0]}..{paused['row_ids'][-1]}) "
                        f"and before marking them applied ({unmarked} of them unmarked at the kill)"
                    )
                    time.sleep(DOWN_SECONDS)
                    second = Worker("second", env, tmp_path)
                    workers.append(second)
                    ready = second.wait_ready()
                    say(f"new worker ready {ready:.1f} s after its start")
                    time.sleep(2.0)  # load on the new worker too
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join(30)

                # Recovery: every update received before the kill applied (the killed batch among them).
                wait_for(recovered.is_set, seconds=120, what="updates received before the kill applied")
                ledger.recovery_seconds = recovered.at - killed_at
                acked = list(ledger.acknowledged)

                def settled() -> bool:
                    pending = InboundUpdate.objects.filter(applied_at__isnull=True).exists()
                    working = Order.objects.filter(idempotency_key__in=acked).exclude(status="FILLED").exists()
                    return not pending and not working

                try:
                    wait_for(settled, seconds=120, what="every acknowledged order filled", step=0.5)
                except AssertionError:
                    statuses = (
                        Order.objects.filter(idempotency_key__in=acked).values_list("status").annotate(n=Count("pk"))
                    )
                    pytest.fail(f"not settled: {dict(statuses)}\n{second.text()[-3000:]}")
                say(
                    f"every update received before the kill applied {ledger.recovery_seconds:.1f} s after the kill "
                    f"(the worker was down {DOWN_SECONDS:.0f} s, then started)"
                )

                try:
                    wait_for(
                        lambda: paused["task_id"] in second.text(),
                        seconds=VISIBILITY_TIMEOUT + 60,
                        what="the killed drain task delivered again",
                        step=0.5,
                    )
                    redelivered = True
                except AssertionError:
                    redelivered = False
                say(f"killed drain task {paused['task_id']} redelivered to the new worker: {bool(redelivered)}")

                # What the trader sees: the served API's order book and positions.
                api = httpx.Client(base_url=url, cookies=world.cookies(), timeout=20)
                page_orders = {}
                page_positions = {}
                for account in world.kite:
                    book = api.get(f"/api/v1/accounts/{account.pk}/orders")
                    assert book.status_code == 200, book.text[:300]
                    page_orders.update({row["client_order_id"]: row for row in book.json()})
                    held = api.get(f"/api/v1/accounts/{account.pk}/positions")
                    assert held.status_code == 200, held.text[:300]
                    page_positions[account.pk] = held.json()
                api.close()
        finally:
            for worker in workers:
                worker.kill()
            fake.stop()

        rows = orders_for_keys(ledger.sent)
        tally = ledger.tally(rows, _kite_counts(fake, [row.broker_tag for row in rows]))
        say(tally.line())
        say(f"postback answers: {dict(postbacks)}")
        orders = list(Order.objects.filter(idempotency_key__in=list(ledger.sent)))
        trades = list(Trade.objects.filter(order__in=orders))
        per_order = Counter(trade.order_id for trade in trades)
        with fake._lock:
            kite_trades = {t["order_id"]: t for t in fake.trades}
        wrong = [
            f"{o.client_order_id}: {o.status} {o.filled_quantity}/{o.quantity}, {per_order[o.pk]} trades"
            for o in orders
            if o.status != "FILLED" or o.filled_quantity != o.quantity or per_order[o.pk] != 1
        ]
        foreign = [
            t.broker_trade_id
            for t in trades
            if kite_trades.get(t.order.broker_order_id, {}).get("trade_id") != t.broker_trade_id
        ]
        sums: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
        for trade in trades:
            sums[(trade.account_id, trade.instrument_id, trade.product)][0 if trade.side == "BUY" else 1] += (
                trade.quantity
            )
        positions = {
            (p.account_id, p.instrument_id, p.product): p for p in Position.objects.filter(account__in=world.kite)
        }
        unequal = [
            f"{key}: position {p.buy_quantity}/{p.sell_quantity} net {p.net_quantity}, trades {sums[key]}"
            for key, p in positions.items()
            if (p.buy_quantity, p.sell_quantity, p.net_quantity)
            != (sums[key][0], sums[key][1], sums[key][0] - sums[key][1])
        ] + [f"{key}: trades without a position" for key in sums if key not in positions]
        page_wrong = [
            str(o.client_order_id)
            for o in orders
            if page_orders.get(str(o.client_order_id), {}).get("status") != o.status
            or page_orders.get(str(o.client_order_id), {}).get("filled_quantity") != o.filled_quantity
        ]
        page_net = {account_id: sum(row["net_quantity"] for row in held) for account_id, held in page_positions.items()}
        net = {
            account.pk: sum(b - s for (a, _i, _p), (b, s) in sums.items() if a == account.pk) for account in world.kite
        }
        chain = verify_chains()
        unapplied = InboundUpdate.objects.filter(applied_at__isnull=True).count()
        at_kite = sum(1 for o in orders if o.broker_order_id in kite_trades)
        say(
            f"orders {len(orders)}, trades {len(trades)} (the Kite server's {at_kite}), "
            f"orders not filled exactly once {len(wrong)}, trades not the Kite server's {len(foreign)}, "
            f"positions unequal to their trades {len(unequal)}, inbox rows unapplied {unapplied}, "
            f"orders the API shows otherwise {len(page_wrong)}, audit chain {'whole' if chain.ok else 'BROKEN'}"
        )
        out = ROOT / "var" / "drills"
        out.mkdir(parents=True, exist_ok=True)
        (out / "worker_kill.txt").write_text("\n".join(lines) + "\n")

        summary = "\n".join(lines)
        tally.assert_whole()
        assert tally.acknowledged > 0 and not tally.failed, summary
        assert unmarked == len(paused["row_ids"]), summary
        assert redelivered, f"the killed task was not redelivered\n{summary}"
        assert not wrong, f"{summary}\n{wrong[:10]}"
        assert not foreign, f"{summary}\n{foreign[:10]}"
        assert not unequal, f"{summary}\n{unequal[:10]}"
        assert unapplied == 0, summary
        assert not page_wrong, f"{summary}\nthe API shows otherwise: {page_wrong[:10]}"
        assert page_net == net, f"{summary}\npositions on the API {page_net}, from the trades {net}"
        assert chain.ok, f"{summary}\n{chain.breaks[:3]} {chain.problems[:3]}"
