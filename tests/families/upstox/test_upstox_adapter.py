"""Upstox's sign-in and the adapter against the local server: the redirect login, the order's terms
read before a modification, a lost read sending nothing, a refusal's message on our order, and every
request in the documented format (the server fails the test otherwise)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

from brokers.adapters import registry
from brokers.adapters.base import (
    BrokerModifyRequest,
    BrokerNotSent,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerRejected,
    BrokerUnavailable,
)
from brokers.services.credentials import broker_credentials_set
from families.upstox.adapter import UpstoxAdapter
from orders.services import place_order
from orders.states import Status
from tests.brokers.contract.kit import REJECT_MESSAGE
from tests.families.upstox import server as up
from tests.families.upstox.kit import UpstoxKit

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_login_page_names_the_app_its_redirect_and_the_state(account):
    page = UpstoxAdapter.login_start(account, state="abc")
    parts = urlsplit(page)
    assert parts.path == "/v2/login/authorization/dialog"
    assert dict(parse_qsl(parts.query)) == {
        "response_type": "code",
        "client_id": up.API_KEY,
        "redirect_uri": up.REDIRECT_URI,
        "state": "abc",
    }


def test_the_code_is_exchanged_for_a_session_ending_at_three_thirty_ist(account, server):
    sign_in = UpstoxKit().sign_in(account, server)
    assert sign_in.secrets == {"access_token": up.ACCESS_TOKEN} and sign_in.broker_user == up.USER_ID
    local = sign_in.expires_at.astimezone(ZoneInfo("Asia/Kolkata"))
    assert (local.hour, local.minute) == (3, 30)
    form = server.last("login").body
    assert form["grant_type"] == "authorization_code" and form["code"] == up.AUTH_CODE


@pytest.mark.parametrize("params", [{}, {"code": ""}, {"code": "a b"}, {"code": "x" * 600}, {"error": "denied"}])
def test_a_callback_without_a_good_code_is_refused_before_calling_upstox(account, server, params):
    with pytest.raises(ValueError):
        UpstoxAdapter.login_finish(account, params)
    assert server.count("login") == 0


def test_a_wrong_secret_is_upstoxs_refusal(account, server):
    broker_credentials_set(account=account, credentials={**UpstoxKit.credentials, "api_secret": "wrong"})
    with pytest.raises(BrokerRejected) as refused:
        UpstoxAdapter.login_finish(account, {"code": up.AUTH_CODE})
    assert refused.value.message == "Invalid Credentials"


def test_missing_credentials_are_refused(account):
    broker_credentials_set(account=account, credentials={"api_key": up.API_KEY})
    with pytest.raises(ValueError):
        UpstoxAdapter.login_start(account, state="s")
    with pytest.raises(ValueError):
        UpstoxAdapter.login_finish(account, {"code": up.AUTH_CODE})


def _adapter(account):
    return registry.adapter_for(account)


def _request(world, *, tag: str) -> BrokerOrderRequest:
    return BrokerOrderRequest(
        tag=tag,
        instrument_id=world.equity.pk,
        exchange="NSE",
        tradingsymbol="RELIANCE",
        side="BUY",
        quantity=10,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        instrument_type="EQ",
        tick_size=Decimal("0.05"),
        price=Decimal("990"),
    )


def test_a_modification_reads_the_orders_terms_then_sends_them_whole(world, account, server):
    adapter = _adapter(account)
    placed = adapter.place_order(_request(world, tag="M0001"))
    adapter.modify_order(broker_order_id=placed.broker_order_id, change=BrokerModifyRequest(quantity=4))
    assert server.last("order_details").query == {"order_id": placed.broker_order_id}
    assert server.last("modify").body == {
        "quantity": 4,
        "validity": "DAY",
        "price": 990.0,
        "order_id": placed.broker_order_id,
        "order_type": "LIMIT",
        "disclosed_quantity": 0,
        "trigger_price": 0,
    }


def test_a_lost_read_of_the_terms_sends_no_modification(world, account, server):
    adapter = _adapter(account)
    placed = adapter.place_order(_request(world, tag="M0002"))
    server.fail_next("order_details", "timeout")
    with pytest.raises(BrokerNotSent) as raised:
        adapter.modify_order(broker_order_id=placed.broker_order_id, change=BrokerModifyRequest(quantity=4))
    assert not isinstance(raised.value, BrokerUnavailable) and server.count("modify") == 0


def test_an_unknown_or_malformed_order_id_is_not_found(account, server):
    adapter = _adapter(account)
    with pytest.raises(BrokerOrderNotFound):
        adapter.cancel_order(broker_order_id="999")
    with pytest.raises(BrokerOrderNotFound):
        adapter.cancel_order(broker_order_id="../etc")
    assert server.count("cancel") == 1


def test_a_refused_order_is_rejected_with_upstoxs_message(world, account, server):
    server.fail_next("place", "rejected")
    order = place_order(
        actor=world.trader, account=account, request=world.request(world.equity, price=Decimal("990")), source="api"
    )
    order.refresh_from_db()
    assert order.status == Status.REJECTED and REJECT_MESSAGE in order.message


def test_a_lapsed_token_ends_the_accounts_session(account, server):
    server.token_valid = False
    adapter = _adapter(account)
    with pytest.raises(Exception) as raised:
        adapter.funds()
    assert getattr(raised.value, "code", "") == "broker_session_expired"
    assert _adapter(account).signed_in is False
