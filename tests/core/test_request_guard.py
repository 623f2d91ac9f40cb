"""A NUL byte anywhere a client can put text is a 400 nul_byte before any view or query runs, and the
errors Django raises before a view answer /api/ in the API's shape (core.request_guard)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from orders.models import Order
from tests.trading_world import World, _fresh_trading_state  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture
def api(world, otp_login):
    return otp_login(Client(), world.trader)


def _refused(response, where: str) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "nul_byte" and body["extra"] == {"where": where}


def test_a_nul_in_any_text_field_of_an_order_is_refused_and_nothing_is_written(world, api):
    before = (Order.objects.count(), AuditEvent.objects.count())
    for field in ("tag", "strategy", "algo_id", "side", "product", "order_type", "validity"):
        order = {
            "account_id": world.account.pk,
            "instrument_id": world.equity.pk,
            "side": "BUY",
            "quantity": world.equity.lot_size,
            "order_type": "MARKET",
            "product": "MIS",
            field: "ab\u0000c",
        }
        _refused(api.post("/api/v1/orders", json.dumps(order), content_type="application/json"), "body")
    assert (Order.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/instruments?q=IN%00FY",
        "/api/v1/instruments?exchange=NS%00E",
        "/options/?underlying=NIF%00TY",
        "/watchlists/1/search/?q=%00",
        "/orgs/acme%00/limits/",
        "/api/v1/orgs/ac%00me/limits",
    ],
)
def test_a_nul_in_a_query_or_path_is_refused(api, path):
    response = api.get(path)
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert response.json()["code"] == "nul_byte"
    else:
        assert b"nul_byte" in response.content


def test_a_nul_in_a_form_post_is_refused(world, api):
    response = api.post(f"/trading/{world.account.pk}/kill-switch/", {"reason": "stop\x00now", "confirm": "on"})
    assert response.status_code == 400 and b"nul_byte" in response.content


def test_a_nul_in_the_token_username_is_refused(db):
    body = json.dumps({"username": "ali\u0000ce", "password": "x", "otp": "123456"})
    _refused(Client().post("/api/accounts/auth/token", body, content_type="application/json"), "body")


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(world, api):
    order = {"account_id": world.account.pk, "instrument_id": world.equity.pk, "side": "BUY"}
    order |= {"quantity": world.equity.lot_size, "order_type": "MARKET", "product": "MIS", "tag": "a\\u0000"}
    response = api.post("/api/v1/orders", json.dumps(order), content_type="application/json")
    assert response.status_code != 400 or response.json()["code"] != "nul_byte"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=30).map(lambda t: t + "\x00"))
def test_any_text_with_a_nul_in_the_search_box_is_a_400_never_a_500(db, text):
    client = Client()
    response = client.get("/api/v1/instruments", {"q": text})
    assert response.status_code == 400


def test_an_oversized_body_is_a_json_400_under_the_api():
    response = Client().post("/api/accounts/auth/token", "x" * (3 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "body_too_large"


def test_an_unknown_api_route_is_a_json_404():
    response = Client().get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_an_unknown_page_is_still_a_page():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
