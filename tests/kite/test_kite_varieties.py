"""Order varieties (regular, amo, co, iceberg): an order carries its variety from the ticket or the API
to Kite's ``/orders/:variety`` path, with the fields the variety needs; modify and cancel go to the
order's own variety; a broker family refuses a variety it does not declare before anything is
written (the paper exchange takes regular orders only)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.errors import OrderInvalid
from orders.models import Order
from orders.services import cancel_order, modify_order, place_order
from orders.states import Status
from paper.models import PaperOrder
from tests.kite import fake_kite as fk
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db(transaction=True)


def _place(world, account, **changes):
    changes.setdefault("price", Decimal("990"))
    request = world.request(world.equity, **changes)
    return place_order(actor=world.trader, account=account, request=request, source="api")


def test_an_after_market_order_is_placed_at_kites_amo_path_with_the_exact_request(world, kite_account, fake_kite):
    order = _place(world, kite_account, variety="amo")
    assert order.variety == "amo" and order.status == Status.OPEN
    sent = fake_kite.last("POST", "/orders/amo")
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
    assert fake_kite.count("POST", "/orders/regular") == 0


def test_a_cover_order_is_placed_at_the_co_path_with_its_stop_loss_trigger(world, kite_account, fake_kite):
    order = _place(world, kite_account, variety="co", trigger_price=Decimal("980"))
    assert (order.variety, order.trigger_price, order.status) == ("co", Decimal("980"), Status.OPEN)
    assert fake_kite.last("POST", "/orders/co").form_dict == {
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": "10",
        "product": "MIS",
        "order_type": "LIMIT",
        "price": "990",
        "trigger_price": "980",
        "validity": "DAY",
        "tag": order.broker_tag,
    }


def test_an_iceberg_order_is_placed_with_its_legs_and_leg_quantity(world, kite_account, fake_kite):
    order = _place(world, kite_account, quantity=100, variety="iceberg", iceberg_legs=4, iceberg_quantity=25)
    assert (order.variety, order.iceberg_legs, order.iceberg_quantity) == ("iceberg", 4, 25)
    assert fake_kite.last("POST", "/orders/iceberg").form_dict == {
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": "100",
        "product": "MIS",
        "order_type": "LIMIT",
        "price": "990",
        "validity": "DAY",
        "iceberg_legs": "4",
        "iceberg_quantity": "25",
        "tag": order.broker_tag,
    }


def test_an_amo_order_is_modified_and_cancelled_at_its_own_variety_path(world, kite_account, fake_kite):
    order = _place(world, kite_account, variety="amo")
    modify_order(actor=world.trader, order=order, price=Decimal("985"))
    modified = fake_kite.last("PUT", f"/orders/amo/{order.broker_order_id}")
    assert modified.form_dict == {"quantity": "10", "price": "985", "order_type": "LIMIT"}
    cancel_order(actor=world.trader, order=order)
    cancelled = fake_kite.last("DELETE", f"/orders/amo/{order.broker_order_id}")
    assert cancelled.query == [] and cancelled.form == []
    assert fake_kite.orders[order.broker_order_id]["status"] == "CANCELLED"
    paths = {r.path for r in fake_kite.requests if r.method in {"PUT", "DELETE"}}
    assert paths == {f"/orders/amo/{order.broker_order_id}"}  # never the regular path


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"variety": "iceberg"}, "iceberg_fields_required"),
        ({"variety": "iceberg", "iceberg_legs": 11, "iceberg_quantity": 1}, "iceberg_legs_out_of_range"),
        ({"variety": "iceberg", "iceberg_legs": 2, "iceberg_quantity": 4}, "iceberg_quantity_invalid"),
        ({"variety": "amo", "iceberg_legs": 2, "iceberg_quantity": 5}, "iceberg_fields_not_allowed"),
        ({"variety": "co"}, "cover_order_stop_required"),
        ({"variety": "co", "order_type": "SL", "trigger_price": Decimal("995")}, "cover_order_type"),
        ({"variety": "bo"}, "invalid_variety"),
    ],
)
def test_a_variety_without_what_it_needs_is_refused_before_anything_is_sent(
    world, kite_account, fake_kite, changes, code
):
    with pytest.raises(OrderInvalid) as caught:
        _place(world, kite_account, **changes)
    assert caught.value.code == code
    assert not Order.objects.exists() and not [r for r in fake_kite.requests if r.method == "POST"]
    assert AuditEvent.objects.get(action="rms.rejected").payload_data["rule"] == code


@pytest.mark.parametrize("variety", ["amo", "co", "iceberg"])
def test_the_paper_exchange_refuses_other_varieties_with_the_typed_error_and_nothing_written(world, variety):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    extra = {"co": {"trigger_price": Decimal("980")}, "iceberg": {"iceberg_legs": 2, "iceberg_quantity": 5}}
    with pytest.raises(OrderInvalid) as caught:
        _place(world, world.account, variety=variety, **extra.get(variety, {}))
    assert caught.value.code == "broker_cannot_variety" and caught.value.status == 422
    assert caught.value.extra == {"variety": variety, "offered": ["regular"]}
    assert not Order.objects.exists() and not PaperOrder.objects.exists()
    assert AuditEvent.objects.get(action="rms.rejected").payload_data["variety"] == variety


def test_the_rest_api_takes_a_variety_and_the_ticket_offers_one_only_where_the_broker_has_several(
    world, kite_account, fake_kite, client
):
    login_with_otp(client, world.trader)
    body = {
        "account_id": kite_account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "990",
        "variety": "iceberg",
        "iceberg_legs": 2,
        "iceberg_quantity": 5,
    }
    answer = client.post("/api/v1/orders", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["variety"] == "iceberg" and answer.json()["iceberg_legs"] == 2
    assert fake_kite.last("POST", "/orders/iceberg").form_dict["iceberg_quantity"] == "5"
    refused = client.post(
        "/api/v1/orders",
        data=json.dumps({**body, "account_id": world.account.pk}),
        content_type="application/json",
    )
    assert refused.status_code == 422 and refused.json()["code"] == "broker_cannot_variety"
    kite_ticket = client.get(f"/trading/{kite_account.pk}/ticket/?instrument={world.equity.pk}").content.decode()
    assert '<select name="variety">' in kite_ticket and 'value="iceberg"' in kite_ticket
    paper_ticket = client.get(f"/trading/{world.account.pk}/ticket/?instrument={world.equity.pk}").content.decode()
    assert 'name="variety"' not in paper_ticket


def test_the_ticket_places_an_amo_order_through_the_variety_select(world, kite_account, fake_kite, client):
    login_with_otp(client, world.trader)
    form = {
        "instrument": world.equity.pk,
        "side": "BUY",
        "order_type": "LIMIT",
        "product": "MIS",
        "lots": "10",
        "price": "990",
        "validity": "DAY",
        "variety": "amo",
        "form_token": "t1",
    }
    answer = client.post(f"/trading/{kite_account.pk}/orders/", form, headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.content
    assert Order.objects.get().variety == "amo" and fake_kite.count("POST", "/orders/amo") == 1
