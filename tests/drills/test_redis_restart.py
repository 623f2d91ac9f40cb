"""The Redis restart drill: the drill's own redis-server killed under load, down a few seconds, started
again (empty: no persistence) on the same port, with no process of the terminal restarted.

The served terminal (gunicorn) and a real Celery worker use that Redis as cache, channel layer,
Celery broker, quote store, orders-per-second governor and broker rate limiter. A stand-in for the
feed writes the instrument's quote every quarter second, as the feed process does on each tick
(retrying while Redis is down). Clients place paper orders through the API and a websocket client
holds the trader's user socket throughout.

While Redis is down every order is refused with a clear code (the governor fails closed: 503
``orders_per_second_unavailable``), never a 500, and none of them is placed. After the restart:
orders are accepted again (the governor counts in Redis again); the cache holds the session's copy
again; a Kite order is counted by the broker rate limiter in Redis; its postback is stored and the
drain the served terminal queues is run by the worker (the Celery broker, both ways), as is a task
sent after the restart; and the socket that stayed open through the outage receives the push of an
order placed after it. Then the ledger: no order lost or duplicated, positions equal to trades, the
audit chain whole.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from audit.verification import verify_chains
from brokers.adapters.base import BrokerRateLimited
from brokers.rate_limits import RateLimit, RedisRateLimiter
from orders.models import Order, Position, Trade
from tests.drills.ledger import Ledger, orders_for_keys, paper_counts_by_tag
from tests.drills.workers import ROOT, Worker, drill_env, own_redis, served, wait_for
from tests.drills.world import OrderClient, market_order, trader, write_quote
from tests.kite.fake_kite import FakeKite

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

CLIENTS = 3  # one paper account each
PAUSE = 0.1  # seconds between one client's orders (the governor's default limit is 10 a second)
DOWN_SECONDS = 3.0
RECOVERY_BOUND = 60.0  # only a hang takes this long
# The answers an order may get while Redis is down: refused, naming why, nothing placed. The quote
# store is read first (an order is never judged without the market's price); the orders-per-second
# governor, next, fails closed too. Just after the restart Redis is empty until the feed's next tick.
REFUSALS_WHILE_DOWN = {"503 quotes_unavailable", "503 orders_per_second_unavailable", "422 no_market_price"}


LIMIT = RateLimit("orders", 3, 1.0)


def _admitted(limiter: RedisRateLimiter) -> int:
    """How many requests the limiter admits in a row under one fresh key before it refuses one."""
    key = uuid.uuid4().hex
    for n in range(LIMIT.limit + 1):
        try:
            limiter.acquire(key, [LIMIT])
        except BrokerRateLimited:
            return n
    return LIMIT.limit + 1


class Socket:
    """The trader's ``/ws/user/`` socket, read on a thread: every frame with the time it came."""

    def __init__(self, url: str, world) -> None:
        ws_url = url.replace("http://", "ws://") + "/ws/user/"
        self.ws = connect(ws_url, additional_headers={"Cookie": world.cookie_header(), "Origin": url}, open_timeout=10)
        self.frames: list[tuple[float, str]] = []
        self.closed: str | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                self.frames.append((time.monotonic(), message if isinstance(message, str) else message.decode()))
        except Exception as error:  # the socket closed: what the drill must not see
            self.closed = f"{type(error).__name__}: {error}"
        else:
            self.closed = f"closed {self.ws.close_code} {self.ws.close_reason}"

    def pushed(self, order_pk: int, after: float) -> bool:
        marker = f'id="order-{order_pk}"'
        return any(when >= after and marker in text for when, text in self.frames)

    def close(self) -> None:
        self.ws.close()


@pytest.mark.django_db(transaction=True)
def test_orders_fail_closed_while_redis_is_down_and_everything_recovers_after_its_restart(tmp_path: Path):
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run = uuid.uuid4().hex[:8]
    world = trader(f"redis{run}", paper=CLIENTS, kite=1)
    fake = FakeKite().start()
    ledger = Ledger("Redis restart")
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with own_redis(tmp_path) as redis_server:
        env = drill_env(redis_server.url(), KITE_API_ROOT=fake.url)
        feeding = threading.Event()

        def feed() -> None:
            while not feeding.is_set():
                with contextlib.suppress(Exception):
                    write_quote(redis_server.url(), world.instrument)
                time.sleep(0.25)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        worker: Worker | None = None
        socket: Socket | None = None
        try:
            with served(env, tmp_path / "gunicorn.log") as (url, _server):
                worker = Worker("only", env, tmp_path)
                worker.wait_ready()
                socket = Socket(url, world)
                clients = [OrderClient(url, world, ledger) for _ in range(CLIENTS)]
                stop = threading.Event()
                placed: list[tuple[float, int]] = []  # (when answered, order pk) of every accepted order

                def client(i: int) -> None:
                    n = 0
                    while not stop.is_set():
                        status, body = clients[i].place(
                            f"{run}-{i}-{n}", market_order(world.paper[i], world.instrument, n), time.monotonic()
                        )
                        if status == 201 and body:
                            placed.append((time.monotonic(), int(body["id"])))
                        n += 1
                        time.sleep(PAUSE)

                threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
                for thread in threads:
                    thread.start()
                try:
                    wait_for(lambda: any(socket.pushed(pk, 0) for _, pk in placed), seconds=30, what="first push")
                    time.sleep(1.0)
                    redis_server.kill()
                    down_at = time.monotonic()
                    limiter = RedisRateLimiter(redis_server.url(), prefix=f"drill:{run}:", max_wait=0)
                    admitted_down = _admitted(limiter)
                    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
                    restarting_at = time.monotonic()  # answers from here on may come from the new Redis
                    redis_server.start()
                    up_at = time.monotonic()
                    say(
                        f"Redis killed under load, down {up_at - down_at:.1f} s, "
                        f"started again empty on port {redis_server.port}"
                    )

                    def accepted_after() -> int | None:
                        return next((pk for when, pk in placed if when > up_at), None)

                    order_back = wait_for(
                        accepted_after, seconds=RECOVERY_BOUND, what="order accepted after the restart"
                    )
                    first_after = accepted_after()
                    push_back = None
                    with contextlib.suppress(AssertionError):
                        push_back = wait_for(
                            lambda: any(socket.pushed(pk, up_at) for when, pk in placed if when > up_at),
                            seconds=RECOVERY_BOUND,
                            what="a push on the open socket after the restart",
                        )
                    time.sleep(1.0)
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join(30)
                say(
                    f"after the restart: an order accepted in {order_back:.2f} s (order {first_after}); "
                    + (
                        f"the socket open through the outage received a push in {push_back:.2f} s"
                        if push_back is not None
                        else f"the socket open through the outage received NO push within {RECOVERY_BOUND:.0f} s"
                    )
                    + f" (socket {socket.closed or 'still open'})"
                )
                ledger.recovery_seconds = max(order_back, push_back if push_back is not None else RECOVERY_BOUND)

                # While down: what the clients were answered.
                answers: Counter[str] = Counter()
                after: Counter[str] = Counter()
                for orders in clients:
                    for when, status, code in orders.statuses:
                        label = f"{status} {code}".strip() if status is not None else code
                        if down_at <= when < restarting_at:
                            answers[label] += 1
                        elif when >= restarting_at:
                            after[label] += 1
                    orders.close()
                say(f"answers while Redis was down: {dict(answers)}; after the restart: {dict(after)}")

                # The Celery broker both ways, the rate limiter and the cache, with no process restarted.
                redis_client = redis_server.client()
                kite_account = world.kite[0]
                kite = httpx.Client(base_url=url, cookies=world.cookies(), headers=world.headers(url), timeout=20)
                answer = kite.post(
                    "/api/v1/orders",
                    json=market_order(kite_account, world.instrument, 0),
                    headers={"Idempotency-Key": f"{run}-kite"},
                )
                ledger.send(f"{run}-kite")
                ledger.record(f"{run}-kite", answer.status_code, answer.json())
                assert answer.status_code == 201, answer.text[:300]
                kite_order = answer.json()
                limited = [k.decode() for k in redis_client.scan_iter("brokers:ratelimit:*")]
                postback = kite.post(
                    "/brokers/kite/postback/",
                    content=fake.postback(kite_order["broker_order_id"], user_id=kite_account.client_code),
                )
                assert postback.status_code == 200, postback.text[:300]
                kite_filled = wait_for(
                    lambda: Order.objects.get(pk=kite_order["id"]).status == "FILLED",
                    seconds=RECOVERY_BOUND,
                    what="the Kite order's postback applied by the worker",
                )
                from celery import Celery

                sender = Celery("drill", broker=redis_server.url())
                redis_client.delete("terminal:1:health:beat-heartbeat")
                sender.send_task("infra.tasks.beat_heartbeat", queue="default")
                task_ran = wait_for(
                    lambda: redis_client.exists("terminal:1:health:beat-heartbeat"),
                    seconds=RECOVERY_BOUND,
                    what="a task sent after the restart run",
                )
                sessions_cached = sum(1 for _ in redis_client.scan_iter("terminal:1:django.contrib.sessions*"))
                admitted_up = _admitted(limiter)
                limiter_in_redis = sum(1 for _ in redis_client.scan_iter(f"drill:{run}:*"))
                say(
                    f"Celery: the postback's drain ran, the Kite order FILLED in {kite_filled:.2f} s; a task sent "
                    f"after the restart ran in {task_ran:.2f} s; the served rate limiter's windows in Redis "
                    f"{len(limited)}; sessions in the cache {sessions_cached}"
                )
                say(
                    f"broker rate limiter (this process, limit {LIMIT.limit} per {LIMIT.window:g} s): while Redis was "
                    f"down it counted in the process, admitted {admitted_down} and refused the next without sending; "
                    f"after the restart admitted {admitted_up}, counting in Redis again ({limiter_in_redis} keys)"
                )

                # What the trader sees: the served API's order books.
                shown = {}
                for account in world.paper:
                    book = kite.get(f"/api/v1/accounts/{account.pk}/orders")
                    assert book.status_code == 200, book.text[:300]
                    shown.update({row["id"]: (row["status"], row["filled_quantity"]) for row in book.json()})
                kite.close()
        finally:
            feeding.set()
            if socket is not None:
                socket.close()
            if worker is not None:
                worker.kill()
            fake.stop()

    rows = orders_for_keys(ledger.sent)
    paper_rows = [row for row in rows if not row.idempotency_key.endswith("-kite")]
    tally = ledger.tally(
        rows,
        {
            **paper_counts_by_tag([r.broker_tag for r in paper_rows]),
            **{row.broker_tag: 1 for row in rows if row.idempotency_key.endswith("-kite")},
        },
    )
    say(tally.line())
    placed_refused = [key for key in ledger.refused if any(row.idempotency_key == key for row in rows)]
    trades = list(Trade.objects.filter(account__in=world.paper))
    sums: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for trade in trades:
        sums[(trade.account_id, trade.instrument_id, trade.product)][0 if trade.side == "BUY" else 1] += trade.quantity
    positions = {
        (p.account_id, p.instrument_id, p.product): p for p in Position.objects.filter(account__in=world.paper)
    }
    unequal = [
        f"{key}: position {p.buy_quantity}/{p.sell_quantity}, trades {sums[key]}"
        for key, p in positions.items()
        if (p.buy_quantity, p.sell_quantity, p.net_quantity)
        != (sums[key][0], sums[key][1], sums[key][0] - sums[key][1])
    ]
    # A paper order is filled at once, or (Redis lost between the placement's read of the quote and the
    # exchange's) rejected by the exchange with nothing booked.
    unfilled = Order.objects.filter(account__in=world.paper).exclude(status__in=["FILLED", "REJECTED"]).count()
    rejected = list(
        Order.objects.filter(account__in=world.paper, status="REJECTED").values_list("broker_tag", flat=True)
    )
    rejected_booked = sum(paper_counts_by_tag(rejected).values())
    shown_otherwise = [
        o.pk for o in Order.objects.filter(account__in=world.paper) if shown.get(o.pk) != (o.status, o.filled_quantity)
    ]
    chain = verify_chains()
    say(
        f"refused orders found placed {len(placed_refused)}, paper orders rejected by the exchange {len(rejected)} "
        f"(booked there {rejected_booked}), neither filled nor rejected {unfilled}, trades {len(trades)}, "
        f"positions unequal to their trades {len(unequal)}, orders the API shows otherwise {len(shown_otherwise)}, "
        f"audit chain {'whole' if chain.ok else 'BROKEN'}"
    )
    out = ROOT / "var" / "drills"
    out.mkdir(parents=True, exist_ok=True)
    (out / "redis_restart.txt").write_text("\n".join(lines) + "\n")

    summary = "\n".join(lines)
    tally.assert_whole()
    assert sum(answers.values()) > 0, f"no order was sent while Redis was down\n{summary}"
    assert set(answers) <= REFUSALS_WHILE_DOWN, f"answers other than a clear refusal while Redis was down\n{summary}"
    assert not [label for label in after if not re.match(r"201|4\d\d ", label)], summary
    assert not placed_refused, f"{summary}\n{placed_refused[:10]}"
    assert push_back is not None, f"the open socket received no push after the restart\n{summary}"
    assert limited, f"the rate limiter counted nothing in Redis after the restart\n{summary}"
    assert sessions_cached, f"the cache holds no session after the restart\n{summary}"
    assert not unequal and not unfilled and not rejected_booked, f"{summary}\n{unequal[:10]}"
    assert admitted_down == LIMIT.limit and admitted_up == LIMIT.limit and limiter_in_redis, summary
    assert not shown_otherwise, f"{summary}\n{shown_otherwise[:10]}"
    assert chain.ok, f"{summary}\n{chain.breaks[:3]} {chain.problems[:3]}"
