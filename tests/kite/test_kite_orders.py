"""The order system trading through Kite Connect against the local Kite server: the network path
(placed after commit, outside any transaction), postbacks through the durable queue, fills fetched
by trade id, lost answers reconciled without a duplicate, and the account's session."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from brokers.adapters.base import BrokerSessionExpired
from brokers.models import InboundUpdate
from brokers.services.inbox import inbox_drain
from brokers.services.sessions import session_state
from orders.models import Order, Trade
from orders.services import cancel_order, place_order, reconcile_order
from orders.states import Status
from tests.kite import fake_kite as fk

pytestmark = pytest.mark.django_db(transaction=True)
ORDERS = "/orders/regular"


@pytest.fixture
def kite(kite_account, settings, fake_kite):
    """The conftest's Kite account, with Kite's login page at the local Kite server too."""
    settings.KITE_LOGIN_URL = f"{fake_kite.url}/connect/login"
    return kite_account


def _limit(world, account, price="990", **changes):
    request = world.request(world.equity, price=Decimal(price), **changes)
    return place_order(actor=world.trader, account=account, request=request, source="api")


def _postback(client, fake_kite, order_id, **kwargs):
    return client.post(
        "/brokers/kite/postback/", fake_kite.postback(order_id, **kwargs), content_type="application/json"
    )


def test_an_order_is_sent_with_the_exact_request_and_tag(world, kite, fake_kite):
    order = _limit(world, kite)
    assert order.status == Status.OPEN and order.broker_order_id in fake_kite.orders
    sent = fake_kite.last("POST", ORDERS)
    assert sent.headers["x-kite-version"] == "3"
    assert sent.headers["authorization"] == f"token {fk.API_KEY}:{fk.ACCESS_TOKEN}"
    assert sent.form_dict == {
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": "10",
        "product": "MIS",
        "order_type": "LIMIT",
        "price": "990",
        "validity": "DAY",
        "tag": order.broker_tag,
    }


def test_a_fill_reported_by_postback_is_applied_through_the_queue_with_the_brokers_trade_id(
    world, kite, fake_kite, client
):
    order = _limit(world, kite)
    fake_kite.fill(order.broker_order_id, Decimal("989.5"))
    assert _postback(client, fake_kite, order.broker_order_id).status_code == 200
    assert InboundUpdate.objects.filter(applied_at__isnull=True).count() == 1
    inbox_drain()
    reconcile_order(order_id=order.pk)  # the queued reconciliation: Kite's postbacks carry no trades
    order.refresh_from_db()
    assert order.status == Status.FILLED and order.filled_quantity == 10
    trade = Trade.objects.get(order=order)
    assert (trade.exchange, trade.broker_trade_id, trade.price) == (
        "NSE",
        fake_kite.trades[0]["trade_id"],
        Decimal("989.5"),
    )


def test_a_postback_with_a_bad_checksum_a_replay_or_an_unknown_account_changes_nothing_and_is_audited(
    world, kite, fake_kite, client
):
    order = _limit(world, kite)
    assert _postback(client, fake_kite, order.broker_order_id, api_secret="wrong").status_code == 403
    assert _postback(client, fake_kite, order.broker_order_id, user_id="ZZ9999").status_code == 200
    assert not InboundUpdate.objects.exists()
    assert _postback(client, fake_kite, order.broker_order_id).status_code == 200
    assert _postback(client, fake_kite, order.broker_order_id).status_code == 200  # the same body again
    assert InboundUpdate.objects.count() == 1
    codes = [e.payload_data["code"] for e in AuditEvent.objects.filter(action="broker.postback_refused").order_by("pk")]
    assert codes == ["postback_checksum_invalid", "postback_unknown_account", "postback_replayed"]
    malformed = client.post("/brokers/kite/postback/", b'{"order_id": ', content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["code"] == "postback_malformed"


def test_a_timeout_after_kite_accepted_leaves_the_order_unknown_and_reconciliation_finds_it_without_a_duplicate(
    world, kite, fake_kite, settings
):
    fake_kite.hang_seconds = 2.0
    fake_kite.lose_answer(method="POST", path=ORDERS, drop=True)
    order = _limit(world, kite)
    assert order.status == Status.UNKNOWN
    assert len(fake_kite.orders) == 1  # Kite has it
    resolved = reconcile_order(order_id=order.pk)
    assert resolved.status == Status.OPEN and resolved.broker_order_id in fake_kite.orders
    assert fake_kite.count("POST", ORDERS) == 1


def test_rejections_and_not_sent_errors_settle_the_order_at_once(world, kite, fake_kite):
    fake_kite.fail(status=429, error_type="NetworkException", message="Too many requests", method="POST", path=ORDERS)
    throttled = _limit(world, kite)
    assert throttled.status == Status.REJECTED and "Too many requests" in throttled.message
    fake_kite.fail(status=400, error_type="InputException", message="Invalid price", method="POST", path=ORDERS)
    refused = _limit(world, kite)
    assert refused.status == Status.REJECTED and refused.message == "Invalid price"


def test_a_token_error_ends_the_session_and_later_orders_are_refused_before_sending(world, kite, fake_kite):
    _limit(world, kite)  # the account's ledger opens at Kite's cash
    fake_kite.access_token_valid = False  # Kite ends the session before its cut-off
    first = _limit(world, kite)
    assert first.status == Status.REJECTED and "access_token" in first.message
    assert not session_state(kite).live
    sent = fake_kite.count("POST", ORDERS)
    with pytest.raises(BrokerSessionExpired):
        _limit(world, kite)
    assert fake_kite.count("POST", ORDERS) == sent


def test_cancel_reaches_kite(world, kite, fake_kite):
    order = _limit(world, kite)
    cancel_order(actor=world.trader, order=order)
    assert fake_kite.last("DELETE").path == f"{ORDERS}/{order.broker_order_id}"
    assert fake_kite.orders[order.broker_order_id]["status"] == "CANCELLED"


def test_connect_signs_the_account_in_through_kites_login_redirect(world, kite, fake_kite, client, otp_login):
    from brokers.models import BrokerSession

    BrokerSession.objects.all().delete()
    otp_login(client, world.trader)
    started = client.post(f"/brokers/accounts/{kite.pk}/connect/")
    assert started.status_code == 302 and started["Location"].startswith(f"{fake_kite.url}/connect/login?")
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(started["Location"])
    except urllib.error.HTTPError as answer:
        back = answer.headers["Location"]
    path = back.split("127.0.0.1", 1)[1]
    done = client.get(path)
    assert done.status_code == 302
    assert session_state(kite).live
    assert AuditEvent.objects.filter(action="broker.session_started").count() == 1
    exchange = fake_kite.last("POST", "/session/token").form_dict
    assert exchange["request_token"] == fk.REQUEST_TOKEN and len(exchange["checksum"]) == 64
    page = client.get(f"/?account={kite.pk}")
    assert b"Signed in to the broker until" in page.content
    raw = json.dumps(list(BrokerSession.objects.values_list("secrets_ciphertext", flat=True)))
    assert fk.ACCESS_TOKEN not in raw


def test_a_cancel_that_reaches_a_committed_order_before_its_send_wins_and_kite_never_sees_it(
    world, kite, fake_kite, monkeypatch
):
    from orders.models import Funds
    from orders.services import placement

    real_send = placement._send

    def cancel_first(order, instrument, adapter):
        cancel_order(actor=world.trader, order=Order.objects.get(pk=order.pk))  # the kill switch, a click...
        real_send(order, instrument, adapter)

    monkeypatch.setattr(placement, "_send", cancel_first)
    order = _limit(world, kite)
    assert order.status == Status.CANCELLED and order.sent_at is None
    assert fake_kite.count("POST", ORDERS) == 0
    assert Funds.objects.get(account=kite).margin_blocked == 0


def test_a_send_that_claimed_the_order_first_makes_the_cancel_wait_for_the_broker(world, kite, fake_kite, monkeypatch):
    from orders.errors import OrderStateConflict
    from orders.services import placement

    real_place = type(placement.adapter_for(kite).wrapped).place_order
    refused: list[str] = []

    def cancel_while_sending(self, request):
        try:
            cancel_order(actor=world.trader, order=Order.objects.get(broker_tag=request.tag))
        except OrderStateConflict as error:
            refused.append(error.code)
        return real_place(self, request)

    monkeypatch.setattr(type(placement.adapter_for(kite).wrapped), "place_order", cancel_while_sending)
    order = _limit(world, kite)
    assert refused and order.status == Status.OPEN  # the cancel was told to wait; the order reached Kite
    assert fake_kite.count("POST", ORDERS) == 1
    cancel_order(actor=world.trader, order=order)
    assert fake_kite.orders[order.broker_order_id]["status"] == "CANCELLED"


def test_the_brokers_acknowledgement_is_pushed_to_the_traders_socket(world, kite, fake_kite, monkeypatch):
    from orders import push

    pushed = []
    monkeypatch.setattr(push, "order_changed_on_commit", lambda order, trade=None: pushed.append(order.status))
    order = _limit(world, kite)
    # Placed (Pending), then the acknowledgement Kite answered with (Open): the row must not stay Pending.
    assert order.status == Status.OPEN and pushed == [Status.PENDING, Status.OPEN]
