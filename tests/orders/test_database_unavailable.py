"""A request whose database connection is lost (a primary killed mid-request, a failover) answers 503
``database_unavailable`` with Retry-After and what to do, never a 500 that reads like a bug
(measured in tests/drills/test_db_failover_under_load.py)."""

import pytest
from django.db import InterfaceError, OperationalError

from orders import api as orders_api
from terminal.views import trading
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, world):
    login_with_otp(client, world.trader)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    return client


def test_an_order_whose_connection_is_lost_answers_503_and_says_to_send_it_again_under_its_key(api, world, monkeypatch):
    def lost(**kwargs):
        raise OperationalError("terminating connection due to unexpected postmaster exit")

    monkeypatch.setattr(orders_api.services, "place_order", lost)
    body = {
        "account_id": world.account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "quantity": 1,
        "order_type": "MARKET",
        "product": "MIS",
    }
    response = api.post("/api/v1/orders", data=body, content_type="application/json", headers={"Idempotency-Key": "k1"})
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    answer = response.json()
    assert answer["code"] == "database_unavailable"
    assert "same Idempotency-Key" in answer["message"]


def test_a_read_on_a_closed_connection_answers_503(api, world, monkeypatch):
    def closed(**kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr(orders_api.selectors, "order_list", closed)
    response = api.get(f"/api/v1/accounts/{world.account.pk}/orders")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


def test_a_page_whose_connection_is_lost_answers_503_telling_the_trader_to_check_the_order_book(
    api, world, monkeypatch
):
    def lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(trading, "order_book", lost)
    response = api.get(f"/trading/{world.account.pk}/panels/orders/")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    page = response.content.decode()
    assert "check the order book" in page and "database_unavailable" in page
