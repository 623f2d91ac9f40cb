"""The REST API v1: bad input is a 422 naming what is wrong, with nothing written but the audited rejection."""

import json
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from orders.models import Funds, Order
from orders.states import Status
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, world):
    login_with_otp(client, world.trader)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    return client


def body(world, **changes):
    data = {
        "account_id": world.account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "990",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post(client, path, data, **headers):
    return client.post(f"/api/v1{path}", data=data, content_type="application/json", headers=headers)


BAD_INPUT = [
    ("quantity_not_positive", {"quantity": 0}),
    ("quantity_not_positive", {"quantity": -10}),
    ("quantity_not_lot_multiple", {"instrument_id": "future", "product": "NRML", "quantity": 50, "price": "19990"}),
    ("price_off_tick", {"price": "990.03"}),
    ("price_required", {"price": None}),
    ("trigger_price_required", {"order_type": "SL"}),
    ("instrument_not_found", {"instrument_id": 999999}),
    ("product_not_allowed_for_instrument", {"product": "NRML"}),
    (
        "product_not_allowed_for_instrument",
        {"instrument_id": "future", "product": "CNC", "quantity": 75, "price": "19990"},
    ),
    ("contract_expired", {"instrument_id": "expired", "product": "NRML", "quantity": 75, "price": "19990"}),
    ("invalid_order_type", {"order_type": "STOP"}),
]


@pytest.mark.parametrize(("code", "changes"), BAD_INPUT, ids=[c for c, _ in BAD_INPUT])
def test_bad_input_is_a_422_with_a_specific_code_and_only_the_rejection_is_recorded(api, world, code, changes):
    if changes.get("instrument_id") in {"future", "expired"}:
        changes = {**changes, "instrument_id": getattr(world, changes["instrument_id"]).pk}
    response = post(api, "/orders", body(world, **changes))
    assert response.status_code == 422, response.content
    assert response.json()["code"] == code and response.json()["message"]
    assert Order.objects.count() == 0
    rejection = AuditEvent.objects.get(action="rms.rejected")
    assert rejection.payload_data["rule"] == code


def test_an_unknown_account_is_not_found_and_a_viewer_may_not_trade(api, client, world):
    assert post(api, "/orders", body(world, account_id=999999)).status_code == 404
    login_with_otp(client, world.viewer)
    response = post(client, "/orders", body(world))
    assert response.status_code == 403 and response.json()["code"] == "broker_account_forbidden"
    assert Order.objects.count() == 0


def test_schema_errors_are_422_too(api, world):
    response = post(api, "/orders", {k: v for k, v in body(world).items() if k != "side"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


def raw_post(client, path, text):
    return client.post(f"/api/v1{path}", data=text, content_type="application/json")


NUMBERS_REFUSED = [
    ("quantity", "1e30", "quantity_out_of_range"),
    ("quantity", "1000000000000000000000000000000", "quantity_out_of_range"),
    ("quantity", "100000001", "quantity_out_of_range"),
    ("quantity", '"ten"', "quantity_not_a_number"),
    ("quantity", "true", "quantity_not_a_number"),
    ("quantity", "10.5", "quantity_not_whole"),
    ("price", '"1e400"', "price_out_of_range"),
    ("price", "1e400", "price_not_finite"),  # JSON's 1e400 is read as infinity
    ("price", "NaN", "price_not_finite"),
    ("price", '"-Infinity"', "price_not_finite"),
    ("price", '"990.00001"', "price_too_precise"),
    ("price", "1e-400", "price_not_positive"),  # read as 0: the pre-trade rule names it
    ("price", "10000000000", "price_out_of_range"),
    ("trigger_price", '"1e400"', "trigger_price_out_of_range"),
    ("instrument_id", "1e30", "instrument_id_out_of_range"),
    ("account_id", "-1", "account_id_out_of_range"),
]


@pytest.mark.parametrize(("field", "literal", "code"), NUMBERS_REFUSED)
def test_a_number_no_order_can_carry_is_a_422_naming_the_field_on_every_placing_route(api, world, field, literal, code):
    fields = body(world) | {field: "__number__"}
    text = json.dumps(fields).replace('"__number__"', literal)
    for path in ("/orders", "/orders/sliced"):
        response = raw_post(api, path, text)
        assert response.status_code == 422, response.content
        assert response.json()["code"] == code and response.json()["message"]
    basket = raw_post(api, "/orders/basket", f'{{"orders": [{text}]}}')
    assert basket.status_code == 422 and basket.json()
    if basket.json()["code"] == "basket_invalid":  # refused by the check of every leg before placing
        assert [leg["code"] for leg in basket.json()["extra"]["legs"]] == [code]
    else:
        assert basket.json()["code"] == code
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "literal", "code"),
    [
        ("quantity", "1e30", "quantity_out_of_range"),
        ("price", '"1e400"', "price_out_of_range"),
        ("price", "1e400", "price_not_finite"),
    ],
)
def test_a_modification_with_a_number_no_order_can_carry_is_a_422_and_the_order_stays(api, world, field, literal, code):
    order = post(api, "/orders", body(world)).json()
    text = f'{{"{field}": {literal}}}'
    response = api.put(f"/api/v1/orders/{order['id']}", data=text, content_type="application/json")
    assert response.status_code == 422 and response.json()["code"] == code
    stored = Order.objects.get(pk=order["id"])
    assert (stored.quantity, stored.price) == (10, 990)


def test_ids_no_row_can_have_are_not_found_on_every_route(api, world):
    huge = 10**30
    assert api.get(f"/api/v1/orders/{huge}").json()["code"] == "order_not_found"
    assert api.delete(f"/api/v1/orders/{huge}").status_code == 404
    assert api.get(f"/api/v1/accounts/{huge}/orders").json()["code"] == "broker_account_not_found"
    assert post(api, f"/accounts/{huge}/orders/cancel-all", {}).status_code == 404
    closing = raw_post(api, "/positions/close", '{"account_id": 1e30, "instrument_id": 1, "product": "CNC"}')
    assert closing.status_code == 422 and closing.json()["code"] == "account_id_out_of_range"


def test_a_delivery_sell_without_holdings_is_refused_through_the_api(api, world):
    response = post(api, "/orders", body(world, side="SELL", product="CNC", price="1000"))
    assert response.status_code == 422 and response.json()["code"] == "insufficient_holdings"
    assert Order.objects.count() == 0 and AuditEvent.objects.get(action="rms.rejected")


def test_a_stop_loss_sell_with_its_trigger_above_the_last_price_is_refused_through_the_api(api, world):
    response = post(api, "/orders", body(world, side="SELL", order_type="SL-M", price=None, trigger_price="1005"))
    assert response.status_code == 422 and response.json()["code"] == "trigger_wrong_side"
    assert Order.objects.count() == 0


def test_place_then_read_status_books_positions_and_funds(api, world):
    response = post(api, "/orders", body(world, order_type="MARKET", price=None))
    assert response.status_code == 201
    order = response.json()
    assert order["status"] == Status.FILLED
    assert api.get(f"/api/v1/orders/{order['id']}").json()["filled_quantity"] == 10
    assert [o["id"] for o in api.get(f"/api/v1/accounts/{world.account.pk}/orders").json()] == [order["id"]]
    trades = api.get(f"/api/v1/accounts/{world.account.pk}/trades").json()
    assert len(trades) == 1 and trades[0]["quantity"] == 10
    positions = api.get(f"/api/v1/accounts/{world.account.pk}/positions").json()
    assert positions[0]["net_quantity"] == 10 and positions[0]["ltp"] == "1000"
    funds = api.get(f"/api/v1/accounts/{world.account.pk}/funds").json()
    assert Decimal(funds["margin_blocked"]) == Decimal("2000.10")  # 10 x 1000.05 / 5
    assert api.get(f"/api/v1/accounts/{world.account.pk}/holdings").json() == []


def test_the_idempotency_key_header_returns_the_same_order(api, world):
    first = post(api, "/orders", body(world), **{"Idempotency-Key": "abc-1"}).json()
    second = post(api, "/orders", body(world), **{"Idempotency-Key": "abc-1"}).json()
    assert first["id"] == second["id"] and Order.objects.count() == 1


def test_modify_cancel_and_cancel_all(api, world):
    order = post(api, "/orders", body(world)).json()
    modified = api.put(
        f"/api/v1/orders/{order['id']}", data={"price": "985", "quantity": 20}, content_type="application/json"
    )
    assert modified.status_code == 200 and modified.json()["quantity"] == 20 and modified.json()["price"] == "985.0000"
    cancelled = api.delete(f"/api/v1/orders/{order['id']}")
    assert cancelled.json()["status"] == Status.CANCELLED
    again = api.delete(f"/api/v1/orders/{order['id']}")
    assert again.status_code == 409 and again.json()["code"] == "order_state_conflict"
    post(api, "/orders", body(world))
    post(api, "/orders", body(world, price="980"))
    done = post(api, f"/accounts/{world.account.pk}/orders/cancel-all", {})
    assert len(done.json()) == 2
    assert not Order.objects.filter(status=Status.OPEN).exists()


def test_a_modification_that_breaks_a_rule_is_refused_and_the_order_stays(api, world):
    order = post(api, "/orders", body(world)).json()
    response = api.put(f"/api/v1/orders/{order['id']}", data={"price": "990.01"}, content_type="application/json")
    assert response.status_code == 422 and response.json()["code"] == "price_off_tick"
    assert Order.objects.get(pk=order["id"]).price == 990


def test_a_basket_with_a_leg_that_cannot_be_placed_places_none_and_names_the_leg(api, world):
    legs = [body(world), body(world, quantity=0), body(world, price="980")]
    response = post(api, "/orders/basket", {"orders": legs})
    assert response.status_code == 422 and response.json()["code"] == "basket_invalid"
    assert [(leg["leg"], leg["code"]) for leg in response.json()["extra"]["legs"]] == [(1, "quantity_not_positive")]
    assert Order.objects.count() == 0
    assert AuditEvent.objects.filter(action="rms.rejected").count() == 1


def test_a_basket_places_each_leg_and_reports_a_leg_refused_by_the_account_s_state(api, world, settings):
    settings.PAPER_OPENING_CASH = 1_000_000
    affordable, too_big = body(world), body(world, quantity=100_000)  # beyond the account's margin
    response = post(api, "/orders/basket", {"orders": [affordable, too_big, body(world, price="980")]})
    legs = response.json()
    assert response.status_code == 201 and [leg["leg"] for leg in legs] == [0, 1, 2]
    assert legs[0]["orders"][0]["status"] == Status.OPEN and legs[2]["orders"]
    assert legs[1]["orders"] == [] and legs[1]["error"]["code"] == "insufficient_margin"
    assert Order.objects.count() == 2


def test_a_basket_is_idempotent_as_a_whole_refused_legs_included(api, world, settings):
    settings.PAPER_OPENING_CASH = 1_000_000
    legs = {"orders": [body(world), body(world, quantity=100_000)]}
    first = api.post("/api/v1/orders/basket", legs, content_type="application/json", HTTP_IDEMPOTENCY_KEY="b-1")
    Funds.objects.update(opening_balance=10**12)  # the refused leg would pass now: a repeat must not place it
    again = api.post("/api/v1/orders/basket", legs, content_type="application/json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert first.status_code == again.status_code == 201
    assert [(leg["leg"], [o["id"] for o in leg["orders"]], leg["error"]) for leg in again.json()] == [
        (leg["leg"], [o["id"] for o in leg["orders"]], leg["error"]) for leg in first.json()
    ]
    assert Order.objects.count() == 1
    other = {"orders": [body(world, price="980")]}
    reused = api.post("/api/v1/orders/basket", other, content_type="application/json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


def test_a_fault_after_a_placed_leg_is_that_leg_s_error_never_a_500(api, world, monkeypatch):
    from orders.services import baskets

    real = baskets.place_sliced_order
    calls = []

    def fails_second(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("the broker library crashed")
        return real(**kwargs)

    monkeypatch.setattr(baskets, "place_sliced_order", fails_second)
    response = post(
        api, "/orders/basket", {"orders": [body(world), body(world, price="980"), body(world, price="985")]}
    )
    legs = response.json()
    assert response.status_code == 201
    assert legs[0]["orders"] and legs[2]["orders"] and legs[1]["error"]["code"] == "leg_failed"
    assert Order.objects.count() == 2


def test_an_order_above_the_freeze_quantity_is_rejected_or_sliced_into_lot_multiples(api, world, settings):
    settings.PAPER_OPENING_CASH = 50_000_000  # margin for 3750 futures
    big = body(world, instrument_id=world.future.pk, product="NRML", quantity=3750, price="19990")
    assert post(api, "/orders", big).json()["code"] == "freeze_quantity_exceeded"
    children = post(api, "/orders/sliced", big).json()
    assert [c["quantity"] for c in children] == [1800, 1800, 150]
    assert len({c["slice_group"] for c in children}) == 1


def test_close_position_squares_it_off(api, world):
    post(api, "/orders", body(world, order_type="MARKET", price=None))
    response = post(
        api, "/positions/close", {"account_id": world.account.pk, "instrument_id": world.equity.pk, "product": "MIS"}
    )
    assert response.status_code == 201 and response.json()[0]["side"] == "SELL"
    assert api.get(f"/api/v1/accounts/{world.account.pk}/positions").json()[0]["net_quantity"] == 0
    again = post(
        api, "/positions/close", {"account_id": world.account.pk, "instrument_id": world.equity.pk, "product": "MIS"}
    )
    assert again.status_code == 404 and again.json()["code"] == "position_not_found"


def test_kill_switch_routes(api, client, world):
    response = post(api, "/kill-switch", {"scope": "account", "target_id": world.account.pk, "reason": "test"})
    assert response.status_code == 200 and response.json()["kill_switch"] == f"account:{world.account.pk}"
    assert post(api, "/orders", body(world)).status_code == 403
    assert post(api, "/kill-switch/release", {"scope": "account", "target_id": world.account.pk}).status_code == 403
    login_with_otp(client, world.owner)
    assert post(client, "/kill-switch/release", {"scope": "account", "target_id": world.account.pk}).status_code == 200


def test_another_organisations_order_is_not_found(api, client, world, django_user_model):
    order = post(api, "/orders", body(world)).json()
    stranger = django_user_model.objects.create_user("stranger")
    login_with_otp(client, stranger)
    assert client.get(f"/api/v1/orders/{order['id']}").status_code == 404
    assert client.delete(f"/api/v1/orders/{order['id']}").status_code == 404


def test_the_openapi_schema_lists_the_order_routes(api):
    paths = api.get("/api/openapi.json").json()["paths"]
    for path in (
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/basket",
        "/api/v1/positions/close",
        "/api/v1/accounts/{account_id}/funds",
        "/api/v1/kill-switch",
    ):
        assert path in paths


def test_a_viewer_reads_the_books_but_cannot_modify_cancel_or_close(api, client, world):
    order = post(api, "/orders", body(world)).json()
    login_with_otp(client, world.viewer)
    assert client.get(f"/api/v1/accounts/{world.account.pk}/orders").status_code == 200
    assert client.get(f"/api/v1/orders/{order['id']}").status_code == 200
    assert client.delete(f"/api/v1/orders/{order['id']}").status_code == 403
    response = client.put(f"/api/v1/orders/{order['id']}", data={"price": "980"}, content_type="application/json")
    assert response.status_code == 403
    close = {"account_id": world.account.pk, "instrument_id": world.equity.pk, "product": "MIS"}
    assert post(client, "/positions/close", close).status_code == 403
    assert post(client, f"/accounts/{world.account.pk}/orders/cancel-all", {}).status_code == 403


def test_an_anonymous_caller_is_refused(client, world):
    assert client.get(f"/api/v1/accounts/{world.account.pk}/orders").status_code == 401


def test_a_read_scope_api_key_reads_the_books_but_cannot_place(client, world):
    from accounts.credentials import api_key_create

    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    _, secret = api_key_create(user=world.trader, name="reader", scope="read", allowed_ips=[])
    headers = {"X-API-Key": secret}
    response = client.post("/api/v1/orders", data=body(world), content_type="application/json", headers=headers)
    assert response.status_code == 403 and Order.objects.count() == 0
    assert client.get(f"/api/v1/accounts/{world.account.pk}/orders", headers=headers).status_code == 200
    _, trading = api_key_create(user=world.trader, name="bot", scope="trade", allowed_ips=[])
    response = client.post(
        "/api/v1/orders", data=body(world), content_type="application/json", headers={"X-API-Key": trading}
    )
    assert response.status_code == 201


@pytest.mark.parametrize("payload", ["[1, 2]", "5", '"price"', "null"])
def test_a_modification_whose_body_is_not_a_json_object_is_a_422_and_the_order_stays(api, world, payload):
    order = post(api, "/orders", body(world)).json()
    response = api.put(f"/api/v1/orders/{order['id']}", data=payload, content_type="application/json")
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert Order.objects.get(pk=order["id"]).events.filter(kind="modify").count() == 0


def test_a_body_that_is_not_json_is_a_400_naming_it(api, world):
    response = api.post("/api/v1/orders", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "body_not_json"
    assert not Order.objects.exists()


@pytest.mark.parametrize("path", ["/orders", "/orders/sliced", "/orders/basket"])
def test_an_idempotency_key_longer_than_any_client_needs_is_a_422(api, world, path):
    payload = {"orders": [body(world)]} if path.endswith("basket") else body(world)
    response = api.post(f"/api/v1{path}", payload, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k" * 200)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert Order.objects.count() == 0
