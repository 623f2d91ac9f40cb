"""The broker contract, the same tests for every family against its own local server on loopback
(the kits of kits.py): sign-in, place, modify, cancel, the books, quotes, order updates, the market
stream (decoding, reconnecting, corrupt messages), typed faults and the order left in the right state,
the symbol master, fuzzed decoders, and no secret stored or logged in plaintext."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from audit.models import AuditEvent
from brokers.adapters import registry
from brokers.adapters.base import (
    BrokerModifyRequest,
    BrokerOrderRequest,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
    BrokerUpdate,
    Fill,
    PlaceResult,
)
from brokers.families.master import master_import
from brokers.families.stream import Decoded, MalformedFrame, StreamFeed
from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerAccount, BrokerInstrument, BrokerSession, InboundUpdate
from brokers.services.inbox import inbox_drain, inbox_receive
from orders.models import Order, OrderEvent
from orders.services import place_order, reconcile_order
from orders.states import Status
from tests.brokers.contract.kit import REJECT_MESSAGE

# The adapter's calls need no commit; the tests that place through the order system (which sends to
# the broker after its transaction commits) run in transactions of their own.
pytestmark = pytest.mark.django_db
PLACED_AFTER_COMMIT = pytest.mark.django_db(transaction=True)

WAIT = 5.0


def _request(world, *, order_type="LIMIT", price="990", tag="T0001", quantity=10, side="BUY") -> BrokerOrderRequest:
    return BrokerOrderRequest(
        tag=tag,
        instrument_id=world.equity.pk,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side=side,
        quantity=quantity,
        order_type=order_type,
        product="MIS",
        validity="DAY",
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal(price) if order_type in ("LIMIT", "SL") else None,
        trigger_price=None,
    )


def _until(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _row(adapter, tag: str):
    order = adapter.order_by_tag(tag)
    assert order is not None, f"the order book has no order tagged {tag}"
    return order


# --- sign-in, place, modify, cancel, books ---------------------------------------------------------


def test_the_familys_login_gives_a_session(kit, account, server, session):
    assert session, "the sign-in stored no session secrets"
    assert any(item.call == "login" for item in server.requests)
    adapter_class = registry.family(account.broker)
    assert adapter_class.code == kit.family and adapter_class.login is not None


def test_a_limit_order_is_sent_exactly_as_documented(world, kit, adapter, server):
    request = _request(world)
    result = adapter.place_order(request)
    assert isinstance(result, PlaceResult) and result.broker_order_id
    assert result.status in ("OPEN", "PENDING", "TRIGGER_PENDING")
    assert server.last("place").body == kit.expected_place(request, server)
    row = _row(adapter, request.tag)
    assert (row.broker_order_id, row.status, row.quantity, row.filled_quantity) == (
        result.broker_order_id,
        "OPEN",
        10,
        0,
    )


def test_a_market_order_fills_and_shows_in_the_order_book_trades_and_positions(world, adapter, server):
    result = adapter.place_order(_request(world, order_type="MARKET", tag="T0002"))
    row = _row(adapter, "T0002")
    assert row.status == "FILLED" and row.filled_quantity == 10 and row.average_price and row.average_price > 0
    trades = [fill for fill in adapter.trades() if fill.broker_order_id == result.broker_order_id]
    assert trades and sum(fill.quantity for fill in trades) == 10
    assert all(isinstance(fill, Fill) and fill.trade_id and isinstance(fill.price, Decimal) for fill in trades)
    positions = {(p.instrument_id, p.product): p.net_quantity for p in adapter.positions()}
    assert positions.get((world.equity.pk, "MIS")) == 10


def test_a_resting_order_is_modified_exactly_as_documented(world, kit, adapter, server):
    request = _request(world, tag="T0003")
    result = adapter.place_order(request)
    change = BrokerModifyRequest(quantity=5, price=Decimal("985.5"))
    adapter.modify_order(broker_order_id=result.broker_order_id, change=change)
    assert server.last("modify").body == kit.expected_modify(result.broker_order_id, request, change)
    row = _row(adapter, "T0003")
    assert (row.quantity, row.price, row.status) == (5, Decimal("985.5"), "OPEN")


def test_a_resting_order_is_cancelled(world, adapter, server):
    result = adapter.place_order(_request(world, tag="T0004"))
    adapter.cancel_order(broker_order_id=result.broker_order_id)
    assert server.last("cancel")
    assert _row(adapter, "T0004").status == "CANCELLED"


def test_an_order_the_broker_never_received_is_not_found_by_tag(adapter):
    assert adapter.order_by_tag("NEVERSENT1") is None


def test_holdings_funds_and_quotes_come_back_typed(world, adapter):
    for holding in adapter.holdings():
        assert isinstance(holding.quantity, int) and isinstance(holding.average_price, Decimal)
    funds = adapter.funds()
    assert all(isinstance(value, Decimal) for value in (funds.cash, funds.margin_used, funds.available))
    quotes = adapter.quotes([world.equity.pk])
    assert quotes[world.equity.pk].instrument_id == world.equity.pk and quotes[world.equity.pk].ltp > 0


def test_an_unmapped_instrument_is_refused_before_anything_is_sent(world, adapter, server):
    BrokerInstrument.objects.all().delete()
    instrument_map_invalidate()
    before = len(server.requests)
    with pytest.raises(BrokerRejected) as refused:
        adapter.place_order(_request(world, tag="T0005"))
    assert refused.value.code == "broker_instrument_not_mapped" and len(server.requests) == before


# --- faults ---------------------------------------------------------------------------------------

FAULT_ERRORS = {
    "http_500": BrokerUnavailable,
    "timeout": BrokerUnavailable,
    "malformed": BrokerUnavailable,
    "truncated": BrokerUnavailable,
    "rate_limited": BrokerRateLimited,
    "session_expired": BrokerSessionExpired,
    "rejected": BrokerRejected,
}


@pytest.mark.parametrize("fault", sorted(FAULT_ERRORS))
def test_a_fault_on_placing_is_the_typed_error_with_the_brokers_message(world, adapter, server, fault):
    server.fail_next("place", fault)
    with pytest.raises(FAULT_ERRORS[fault]) as raised:
        adapter.place_order(_request(world, tag="T0006"))
    if fault == "rejected":
        assert REJECT_MESSAGE in raised.value.message
    assert raised.value.code  # machine-readable


@pytest.mark.parametrize("fault", ["http_500", "malformed", "truncated", "rate_limited", "session_expired"])
def test_a_fault_on_reading_the_order_book_is_the_typed_error(adapter, server, fault):
    server.fail_next("orders", fault)
    with pytest.raises(FAULT_ERRORS[fault]):
        adapter.order_book()


@PLACED_AFTER_COMMIT
def test_a_refused_order_is_rejected_with_the_brokers_message(world, account, server):
    server.fail_next("place", "rejected")
    order = place_order(
        actor=world.trader, account=account, request=world.request(world.equity, price=Decimal("990")), source="api"
    )
    order.refresh_from_db()
    assert order.status == Status.REJECTED and REJECT_MESSAGE in order.message


@PLACED_AFTER_COMMIT
def test_an_answer_lost_after_acceptance_leaves_the_order_unknown_then_reconciles_without_a_duplicate(
    world, account, server
):
    server.fail_next("place", "timeout")
    order = place_order(
        actor=world.trader, account=account, request=world.request(world.equity, price=Decimal("990")), source="api"
    )
    order.refresh_from_db()
    assert order.status == Status.UNKNOWN
    resolved = reconcile_order(order_id=order.pk)
    assert resolved.status == Status.OPEN and resolved.broker_order_id
    assert sum(1 for item in server.requests if item.call == "place") == 1


# --- order updates ---------------------------------------------------------------------------------


def _apply_updates(account, messages: list) -> list[BrokerUpdate]:
    family = registry.family(account.broker)
    updates = [u for u in (family.update_from_stream(account.pk, m) for m in messages) if u is not None]
    if updates:
        inbox_receive(updates, source="websocket")
        inbox_drain()
    return updates


@PLACED_AFTER_COMMIT
def test_a_fill_reported_by_the_brokers_update_reaches_the_order(world, kit, account, server, session, client):
    order = place_order(
        actor=world.trader, account=account, request=world.request(world.equity, price=Decimal("990")), source="api"
    )
    order.refresh_from_db()
    assert order.status == Status.OPEN
    family = registry.family(account.broker)
    if kit.order_updates == "stream":
        received: list = []
        feed = StreamFeed(family.order_stream(account, session), on_orders=received.extend)
        feed.start()
        try:
            _until(lambda: feed.stats.connects, "the order stream to connect")
            time.sleep(0.2)  # the stream's opening messages (sign-in, order subscription) are processed
            server.fill(order.broker_order_id, Decimal("990"))
            assert server.push_order_update(order.broker_order_id) is None
            _until(lambda: received, "the order update")
        finally:
            feed.stop()
        updates = _apply_updates(account, received)
        assert updates and updates[-1].tag == order.broker_tag
    else:
        server.fill(order.broker_order_id, Decimal("990"))
        postback = server.push_order_update(order.broker_order_id)
        assert postback is not None
        path, body, headers = postback
        answer = client.post(path, body, content_type=headers.get("content-type", "application/json"), headers=headers)
        assert answer.status_code == 200
        assert InboundUpdate.objects.filter(account=account).exists()
        inbox_drain()
    order.refresh_from_db()
    if order.status != Status.FILLED:  # an update without trades sends the order to reconciliation for them
        order = reconcile_order(order_id=order.pk)
    assert order.status == Status.FILLED and order.filled_quantity == order.quantity


# --- the market stream ----------------------------------------------------------------------------


@pytest.fixture
def market(world, account, session, server):
    family = registry.family(account.broker)
    quotes: list = []
    lock = threading.Lock()

    def collect(batch):
        with lock:
            quotes.extend(batch)

    feed = StreamFeed(family.market_stream(account, session), on_quotes=collect)
    feed.subscribe([world.equity])
    feed.start()
    _until(lambda: server.subscriptions, "the market stream's subscription")
    yield feed, quotes
    feed.stop()


def _quote_at(quotes, instrument_id: int, ltp: Decimal):
    return next((q for q in list(quotes) if q.instrument_id == instrument_id and q.ltp == ltp), None)


def test_ticks_decode_into_quotes_of_our_instrument(world, kit, server, market):
    _, quotes = market
    server.push_tick(kit.equity_token, Decimal("1234.5"))
    quote = _until(lambda: _quote_at(quotes, world.equity.pk, Decimal("1234.5")), "the tick's quote")
    assert quote.ts.tzinfo is not None


def test_a_dropped_stream_reconnects_and_subscribes_again(world, kit, server, market):
    feed, quotes = market
    subscribed = len(server.subscriptions)
    server.drop_streams()
    _until(lambda: len(server.subscriptions) > subscribed, "the subscription after reconnecting", timeout=10)
    server.push_tick(kit.equity_token, Decimal("1111.05"))
    _until(lambda: _quote_at(quotes, world.equity.pk, Decimal("1111.05")), "a quote after reconnecting")
    assert feed.stats.reconnects >= 1 and feed.is_alive()


def test_corrupt_messages_are_counted_and_skipped_without_killing_the_stream(world, kit, server, market):
    feed, quotes = market
    frame = kit.valid_frame(kit.equity_token, Decimal("1500"))
    server.push_raw(frame[: max(1, len(frame) // 2)])
    server.push_raw(b"\xff\x00\x13garbage" if isinstance(frame, bytes) else "{not json")
    server.push_tick(kit.equity_token, Decimal("1222.25"))
    _until(lambda: _quote_at(quotes, world.equity.pk, Decimal("1222.25")), "a quote after corrupt messages")
    assert feed.stats.malformed >= 1 and feed.is_alive()


# --- decoders fuzzed --------------------------------------------------------------------------------

prices = (
    st.decimals(min_value=Decimal("0.05"), max_value=Decimal("99999.95"), places=2)
    .map(lambda d: (d * 20).to_integral_value() / 20)
    .filter(lambda d: d > 0)
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    price=prices, cut=st.integers(min_value=0, max_value=400), noise=st.binary(max_size=300), text=st.text(max_size=200)
)
def test_decoders_read_valid_frames_and_survive_random_and_truncated_ones(
    kit, account, session, price, cut, noise, text
):
    family = registry.family(account.broker)
    dialect = family.market_stream(account, session)
    frame = kit.valid_frame(kit.equity_token, price)
    decoded = dialect.decode(frame)
    ticks = [tick for tick in decoded.ticks if tick.token == kit.equity_token]
    assert ticks and ticks[-1].ltp == price  # Decimal equality: 1234.50 == 1234.5
    for message in (frame[:cut], noise, text, frame + (noise if isinstance(frame, bytes) else text)):
        try:
            result = dialect.decode(message)
        except MalformedFrame:
            continue
        assert isinstance(result, Decoded)


# --- the symbol master ------------------------------------------------------------------------------


def test_the_symbol_master_maps_our_instrument_to_the_brokers_token(world, kit, account):
    BrokerInstrument.objects.filter(broker=kit.family).delete()
    instrument_map_invalidate()
    family = registry.family(account.broker)
    report = master_import(kit.family, family.master_rows(kit.broker), min_rows=1)
    assert report.mapped >= 1 and report.error_count == 0
    mapped = BrokerInstrument.objects.get(broker=kit.family, instrument=world.equity)
    assert mapped.token == kit.equity_token


# --- secrets -----------------------------------------------------------------------------------------


@PLACED_AFTER_COMMIT
def test_no_secret_or_token_is_stored_or_logged_in_plaintext(world, kit, account, server, caplog):
    caplog.set_level(logging.DEBUG)
    sign_in = kit.sign_in(account, server)
    from brokers.services.sessions import session_start

    session_start(account=account, secrets=sign_in.secrets, expires_at=timezone.now() + timezone.timedelta(hours=1))
    place_order(
        actor=world.trader, account=account, request=world.request(world.equity, price=Decimal("990")), source="api"
    )
    secrets = {
        value for value in (*kit.secrets, *kit.credentials.values(), *sign_in.secrets.values()) if len(value) >= 6
    }
    assert secrets
    stored = " ".join(
        str(row)
        for model in (BrokerAccount, BrokerSession, AuditEvent, Order, OrderEvent, InboundUpdate)
        for row in model.objects.values_list()
    )
    logged = caplog.text
    for secret in secrets:
        assert secret not in stored, f"a secret is stored in plaintext ({secret[:3]}...)"
        assert secret not in logged, f"a secret is logged ({secret[:3]}...)"
