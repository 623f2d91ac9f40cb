"""``manage.py run_feed --source kite`` against the fake ticker (tests/kite/fake_ticker.py) and the fake
Kite server, with a signed-in Kite account: quotes reach the publisher by the Kite mapping's tokens,
order messages go into the durable update queue, a reconnect queues the account's reconciliation."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from guardian.shortcuts import assign_perm

from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerAccount, BrokerInstrument, InboundUpdate
from brokers.services.credentials import broker_credentials_set
from brokers.services.inbox import inbox_drain
from brokers.services.sessions import session_end, session_start
from kite.feed_source import RECONCILE_ACCOUNT_TASK, OrderStream
from kite.ticker import order_update
from marketdata import quotes
from orders.models import Order
from orders.services import place_order
from orders.states import Status
from orders.tasks import reconcile_account_task
from tests.kite import fake_kite as fk
from tests.kite import wire
from tests.kite.fake_ticker import FakeTicker, eventually

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = wire.token(4242, "NSE")  # Kite's token for RELIANCE here: not what its exchange token would give
NOON = datetime(2026, 11, 20, 6, 30, 5, tzinfo=UTC)


@pytest.fixture
def ticker():
    with FakeTicker(api_key=fk.API_KEY, access_token=fk.ACCESS_TOKEN) as fake:
        fake.set_price(TOKEN, ltp=Decimal("1001.25"), volume=500, timestamp=NOON)
        yield fake


@pytest.fixture
def kite(world, settings, fake_kite, ticker):
    settings.KITE_API_ROOT = fake_kite.url
    settings.KITE_TICKER_URL = ticker.url
    account = BrokerAccount.objects.create(organisation=world.org, label="Zerodha", broker="kite", client_code="AB1234")
    broker_credentials_set(account=account, credentials={"api_key": fk.API_KEY, "api_secret": fk.API_SECRET})
    session_start(
        account=account, secrets={"access_token": fk.ACCESS_TOKEN}, expires_at=timezone.now() + timedelta(hours=8)
    )
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    settings.KITE_FEED_ACCOUNT_ID = account.pk
    BrokerInstrument.objects.create(
        broker="kite",
        instrument=world.equity,
        token=str(TOKEN),
        tradingsymbol="RELIANCE",
        exchange="NSE",
        listed_at=timezone.now(),
    )
    instrument_map_invalidate()
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    yield account
    instrument_map_invalidate()


@pytest.fixture
def sent(monkeypatch):
    """The Celery tasks sent by name (a drain of the inbox, a reconciliation), none of them run."""
    calls: list[tuple[str, list]] = []
    monkeypatch.setattr(
        "celery.app.base.Celery.send_task", lambda self, name, args=(), **kw: calls.append((name, list(args or ())))
    )
    return calls


def _limit(world, account, price="990"):
    request = world.request(world.equity, price=Decimal(price))
    return place_order(actor=world.trader, account=account, request=request, source="api")


def _order_message(fake_kite, order_id: str, user_id: str = "AB1234") -> dict:
    """The order as Kite's book holds it, as the ticker sends it (the postback's fields)."""
    body = json.loads(fake_kite.postback(order_id, user_id=user_id))
    body.pop("checksum")
    return body


def _run_feed_while(drive) -> str:
    """Run ``manage.py run_feed --source kite`` on this (the main) thread while ``drive()`` runs on
    another; SIGTERM ends the command once ``drive`` returns or fails. Returns the command's output."""
    failure: list[BaseException] = []
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    running = threading.Event()

    def driver():
        try:
            drive()
        except BaseException as exc:
            failure.append(exc)
        finally:
            if running.is_set():  # never signal this process once the command's handler is gone
                os.kill(os.getpid(), signal.SIGTERM)

    out = io.StringIO()
    thread = threading.Thread(target=driver, daemon=True)
    running.set()
    try:
        thread.start()
        call_command("run_feed", "--source", "kite", "--metrics-port", "0", "--no-candles", stdout=out)
    finally:
        running.clear()
        thread.join(60)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if failure:
        raise failure[0]
    return out.getvalue()


def test_run_feed_kite_publishes_quotes_queues_order_messages_and_reconciles_after_a_reconnect(
    world, kite, fake_kite, ticker, sent
):
    order = _limit(world, kite)
    assert order.status == Status.OPEN
    fake_kite.cancel_at_exchange(order.broker_order_id)

    def drive():
        eventually(lambda: any(TOKEN in c.modes for c in ticker.open_connections()), message="the subscription")
        # The answer to the subscription carries RELIANCE's quote: through the publisher to the quote store.
        eventually(
            lambda: (
                (q := quotes.get_quotes([world.equity.pk]).get(world.equity.pk)) is not None
                and q.ltp == Decimal("1001.25")
            ),
            message="the quote in the store",
        )
        ticker.send_order(**_order_message(fake_kite, order.broker_order_id))
        eventually(lambda: InboundUpdate.objects.filter(source="websocket").exists(), message="the queued update")
        assert not any(name == RECONCILE_ACCOUNT_TASK for name, _ in sent)
        ticker.drop()
        eventually(lambda: (RECONCILE_ACCOUNT_TASK, [kite.pk]) in sent, message="the reconciliation")
        eventually(lambda: len(ticker.open_connections()) == 1, message="the reconnect")

    output = _run_feed_while(drive)
    assert "feed kite running" in output and "feed kite stopped after" in output
    # Only the mapped instrument was asked for, by Kite's token.
    assert {t for c in ticker.connections for t in c.modes} == {TOKEN}
    update = InboundUpdate.objects.get(source="websocket")
    assert update.account_id == kite.pk and update.applied_at is None
    assert update.update["tag"] == order.broker_tag and update.update["status"] == Status.CANCELLED
    order.refresh_from_db()
    assert order.status == Status.OPEN  # nothing applied directly: the queue does it
    assert inbox_drain() == 1
    order.refresh_from_db()
    assert order.status == Status.CANCELLED


def test_run_feed_kite_without_a_live_session_says_so(world, kite):
    session_end(account_id=kite.pk, reason="signed out")
    with pytest.raises(CommandError, match=r"^The Kite account Zerodha has no live session: sign it in"):
        call_command("run_feed", "--source", "kite", "--metrics-port", "0", "--no-candles")


def test_run_feed_kite_ends_with_an_error_when_the_ticker_refuses_the_token(world, kite):
    session_start(account=kite, secrets={"access_token": "yesterdays"}, expires_at=timezone.now() + timedelta(hours=1))
    with pytest.raises(CommandError, match=r"^feed kite gave up: the ticker refused the access token \(HTTP 403\)"):
        call_command("run_feed", "--source", "kite", "--metrics-port", "0", "--no-candles", stdout=io.StringIO())


def test_run_feed_kite_needs_its_account(world, kite, settings):
    settings.KITE_FEED_ACCOUNT_ID = 0
    with pytest.raises(CommandError, match=r"^Set KITE_FEED_ACCOUNT_ID"):
        call_command("run_feed", "--source", "kite", "--metrics-port", "0", "--no-candles")
    settings.KITE_FEED_ACCOUNT_ID = world.account.pk  # the paper account
    with pytest.raises(CommandError, match="is not a Kite broker account"):
        call_command("run_feed", "--source", "kite", "--metrics-port", "0", "--no-candles")


def test_order_messages_are_queued_once_for_our_accounts_and_tags_only(world, kite, fake_kite, sent):
    order = _limit(world, kite)
    stream = OrderStream(account_id=kite.pk)
    message = _order_message(fake_kite, order.broker_order_id)
    stream.receive(order_update(message))
    stream.receive(order_update(message))  # the same message on a second connection
    stream.receive(order_update(_order_message(fake_kite, order.broker_order_id, user_id="ZZ9999")))
    stream.receive(order_update({**message, "tag": None, "tags": []}))  # placed outside the terminal
    assert (stream.received, stream.ignored) == (1, 2)
    (row,) = InboundUpdate.objects.all()
    assert (row.source, row.account_id, row.update["broker_order_id"]) == ("websocket", kite.pk, order.broker_order_id)
    assert row.update["status"] == Status.OPEN


def test_reconcile_account_task_settles_every_working_order_of_the_account(world, kite, fake_kite):
    cancelled, filled, untouched = _limit(world, kite), _limit(world, kite, "980"), _limit(world, kite, "970")
    fake_kite.cancel_at_exchange(cancelled.broker_order_id)
    fake_kite.fill(filled.broker_order_id, Decimal("979.5"))
    assert reconcile_account_task(kite.pk) == {Status.CANCELLED: 1, Status.FILLED: 1, Status.OPEN: 1}
    statuses = dict(Order.objects.filter(account=kite).values_list("pk", "status"))
    assert statuses == {cancelled.pk: Status.CANCELLED, filled.pk: Status.FILLED, untouched.pk: Status.OPEN}


def test_reconciling_an_account_after_a_reconnect_reads_its_order_book_once_not_once_per_order(world, kite, fake_kite):
    orders = [_limit(world, kite, price) for price in ("990", "985", "980", "975")]
    fake_kite.fill(orders[0].broker_order_id, Decimal("989.5"))
    fake_kite.cancel_at_exchange(orders[1].broker_order_id)
    before = len(fake_kite.requests)
    assert reconcile_account_task(kite.pk) == {Status.FILLED: 1, Status.CANCELLED: 1, Status.OPEN: 2}
    asked = [(r.method, r.path) for r in fake_kite.requests[before:]]
    assert asked.count(("GET", "/orders")) == 1
    assert sorted(set(asked)) == [("GET", "/orders"), ("GET", "/trades")]  # no per-order history or trades
    assert Order.objects.get(pk=orders[0].pk).filled_quantity == orders[0].quantity
