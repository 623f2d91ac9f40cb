"""The risk limits API: Owner and Admin read and set each scope of their organisation, everyone else
is refused as the limits page refuses them, bad input is a 4xx with its own code and writes nothing,
and the next order obeys what was set."""

import json
from decimal import Decimal

import pytest
from django.db import models

from accounts.credentials import api_key_create
from accounts.models import Membership, Organisation, Role
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from orders.models import Order
from rms.models import LIMIT_FIELDS, RiskLimit
from rms.schemas import LimitsIn, LimitValuesOut
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
LIMITS = "/api/v1/orgs/acme/limits"


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        return login_with_otp(client, user)

    return sign_in


def _urls(world) -> dict[str, str]:
    return {
        "organisation": f"{LIMITS}/organisation",
        "account": f"{LIMITS}/accounts/{world.account.pk}",
        "user": f"{LIMITS}/members/{world.trader.pk}",
    }


def put(client, url: str, data, key: str | None = None):
    """PUT ``data`` (an object, or raw JSON text) as JSON, signed in or with an API key."""
    body = data if isinstance(data, str) else json.dumps(data)
    headers = {"X-API-Key": key} if key else {}
    return client.put(url, data=body, content_type="application/json", headers=headers)


def _nothing_written() -> bool:
    return not RiskLimit.objects.exists() and not AuditEvent.objects.filter(action="rms.limits_changed").exists()


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_an_owner_or_admin_reads_every_scope_with_decimals_as_strings_and_sets_as_lists(world, signed_in, who):
    RiskLimit.objects.create(max_order_value=Decimal("5000000"))  # everyone
    RiskLimit.objects.create(account=world.account, max_open_orders=7, allowed_products="NRML,MIS")
    response = signed_in(getattr(world, who)).get(LIMITS)
    assert response.status_code == 200, response.content
    limits = response.json()
    assert limits["organisation"]["scope"] == "organisation" and limits["organisation"]["target_id"] is None
    assert limits["organisation"]["label"] == "Acme" and set(limits["organisation"]["values"]) == set(LIMIT_FIELDS)
    [account] = limits["accounts"]
    assert (account["scope"], account["target_id"], account["label"]) == ("account", world.account.pk, "Paper")
    assert account["values"]["max_open_orders"] == 7 and account["values"]["allowed_products"] == ["MIS", "NRML"]
    assert account["values"]["allowed_exchanges"] is None and account["values"]["max_order_quantity"] is None
    members = {m["target_id"]: m for m in limits["members"]}
    assert set(members) == {world.owner.pk, world.admin.pk, world.trader.pk, world.viewer.pk}
    assert members[world.trader.pk]["scope"] == "user"
    everyone = limits["everyone"]
    assert (everyone["scope"], everyone["target_id"]) == ("everyone", None)
    assert everyone["values"]["max_order_value"] == "5000000.00"


@pytest.mark.parametrize("who", ["owner", "admin"])
@pytest.mark.parametrize("scope", ["organisation", "account", "user"])
def test_an_owner_or_admin_sets_each_scope_and_gets_its_values_back(world, signed_in, who, scope):
    client = signed_in(getattr(world, who))
    data = {"max_order_quantity": 100, "max_daily_loss": "2500.50", "allowed_exchanges": ["nfo", "NSE"]}
    response = put(client, _urls(world)[scope], data)
    assert response.status_code == 200, response.content
    entry = response.json()
    target_id = {"organisation": None, "account": world.account.pk, "user": world.trader.pk}[scope]
    assert (entry["scope"], entry["target_id"]) == (scope, target_id)
    assert entry["values"]["max_order_quantity"] == 100 and entry["values"]["max_daily_loss"] == "2500.50"
    assert entry["values"]["allowed_exchanges"] == ["NSE", "NFO"] and entry["values"]["allowed_products"] is None
    row = RiskLimit.objects.get()
    assert (row.max_order_quantity, row.max_daily_loss, row.allowed_exchanges) == (100, Decimal("2500.50"), "NSE,NFO")
    event = AuditEvent.objects.get(action="rms.limits_changed")
    assert event.actor == f"user:{getattr(world, who).pk}" and event.ip == "127.0.0.1"
    assert event.payload_data["scope"] == scope and event.payload_data["after"]["max_order_quantity"] == 100


def test_fields_not_given_keep_their_value_and_null_clears_one(world, signed_in):
    client = signed_in(world.owner)
    url = _urls(world)["organisation"]
    put(client, url, {"max_order_quantity": 100, "max_open_orders": 5, "allowed_products": ["MIS"]})
    response = put(client, url, {"max_open_orders": None, "allowed_products": []})
    assert response.status_code == 200
    values = response.json()["values"]
    assert (values["max_order_quantity"], values["max_open_orders"], values["allowed_products"]) == (100, None, None)
    row = RiskLimit.objects.get()
    assert (row.max_order_quantity, row.max_open_orders, row.allowed_products) == (100, None, "")


def test_a_json_number_is_stored_exactly_not_rounded_through_a_float(world, signed_in):
    # the largest limit: 15 significant digits, which a float holds only approximately (…99.990234375)
    response = put(signed_in(world.owner), _urls(world)["account"], '{"max_order_value": 9999999999999.99}')
    assert response.status_code == 200, response.content
    assert response.json()["values"]["max_order_value"] == "9999999999999.99"
    assert RiskLimit.objects.get().max_order_value == Decimal("9999999999999.99")


def test_a_limit_of_more_digits_than_every_database_stores_exactly_is_a_422(world, signed_in):
    response = put(signed_in(world.owner), _urls(world)["account"], '{"max_daily_loss": 99999999999999.99}')
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "limit_too_large" and "10000000000000" in response.json()["message"]
    assert _nothing_written()


def test_every_rupee_limit_fits_in_the_15_significant_digits_sqlite_stores_exactly():
    decimals = [field for field in RiskLimit._meta.get_fields() if isinstance(field, models.DecimalField)]
    assert {field.name for field in decimals} >= {"max_order_value", "max_daily_loss"}
    assert {field.name: field.max_digits for field in decimals if field.max_digits > 15} == {}
    largest = {field.name: Decimal(10**field.max_digits - 1).scaleb(-field.decimal_places) for field in decimals}
    row = RiskLimit.objects.create(**largest)
    row.refresh_from_db()
    assert {name: getattr(row, name) for name in largest} == largest


BAD_INPUT = [
    ("limit_negative", {"max_order_quantity": -5}),
    ("limit_negative", {"max_daily_loss": "-0.01"}),
    ("limit_not_a_number", {"max_order_value": "ten lakh"}),
    ("limit_not_a_number", {"max_open_orders": True}),
    ("limit_not_whole", {"max_orders_per_second": 2.5}),
    ("limit_too_precise", {"max_ltp_deviation_pct": 1.005}),
    ("limit_too_precise", {"max_order_value": "100.001"}),
    ("limit_too_large", {"max_order_quantity": 3_000_000_000}),
    ("exchange_unknown", {"allowed_exchanges": ["NSE", "LSE"]}),
    ("product_unknown", {"allowed_products": "MIS,CO"}),
    ("limit_field_unknown", {"max_position": 5}),
]


@pytest.mark.parametrize(("code", "data"), BAD_INPUT, ids=[f"{c}-{next(iter(d))}" for c, d in BAD_INPUT])
@pytest.mark.parametrize("scope", ["organisation", "account", "user"])
def test_bad_input_is_a_422_with_its_own_code_naming_the_field_and_writes_nothing(world, signed_in, scope, code, data):
    response = put(signed_in(world.owner), _urls(world)[scope], {"max_open_orders": 10} | data)  # a good one too
    assert response.status_code == 422, response.content
    error = response.json()
    field = next(iter(data))
    assert error["code"] == code and error["message"]
    assert error["extra"]["fields"] == {field: {"code": code, "message": error["message"]}}
    assert _nothing_written()


def test_an_unknown_field_is_named_in_the_message(world, signed_in):
    response = put(signed_in(world.owner), _urls(world)["organisation"], {"max_position": 5})
    assert response.json()["message"] == "'max_position' is not a limit."


@pytest.mark.parametrize("body", ["[1, 2]", '"max_order_quantity"', "5", "null", ""])
def test_a_body_that_is_not_a_json_object_is_a_422_validation_error(world, signed_in, body):
    response = put(signed_in(world.owner), _urls(world)["organisation"], body)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error" and response.json()["extra"]["errors"]
    assert _nothing_written()


def test_an_account_or_member_of_another_organisation_is_not_found_and_nothing_is_written(
    world, signed_in, django_user_model
):
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    stranger = django_user_model.objects.create_user("other-owner")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    client = signed_in(world.owner)
    for url in (f"{LIMITS}/accounts/{theirs.pk}", f"{LIMITS}/members/{stranger.pk}", f"{LIMITS}/accounts/999999"):
        response = put(client, url, {"max_order_quantity": 1})
        assert response.status_code == 404 and response.json()["code"] == "risk_limit_scope_not_found"
    assert _nothing_written()


@pytest.mark.parametrize("who", ["trader", "viewer"])
def test_traders_and_viewers_get_403_and_nothing_is_written(world, signed_in, who):
    client = signed_in(getattr(world, who))
    response = client.get(LIMITS)
    assert response.status_code == 403 and response.json()["code"] == "not_organisation_manager"
    for url in _urls(world).values():
        response = put(client, url, {"max_order_quantity": 1})
        assert response.status_code == 403 and response.json()["code"] == "not_organisation_manager"
    assert _nothing_written()


def test_an_outsider_gets_the_same_404_as_for_an_organisation_that_does_not_exist(world, signed_in, django_user_model):
    other = Organisation.objects.create(name="Other", slug="other")
    stranger = django_user_model.objects.create_user("other-owner")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    client = signed_in(stranger)
    for slug in ("acme", "no-such-org"):
        response = client.get(f"/api/v1/orgs/{slug}/limits")
        assert response.status_code == 404 and response.json()["code"] == "organisation_not_found"
        for path in ("organisation", f"accounts/{world.account.pk}", f"members/{world.trader.pk}"):
            response = put(client, f"/api/v1/orgs/{slug}/limits/{path}", {"max_order_quantity": 1})
            assert response.status_code == 404 and response.json()["code"] == "organisation_not_found"
    assert _nothing_written()


def test_an_owners_trade_key_sets_limits_and_a_read_key_only_reads(world, client):
    _, reader = api_key_create(user=world.owner, name="reader", scope="read", allowed_ips=[])
    _, trader = api_key_create(user=world.owner, name="bot", scope="trade", allowed_ips=[])
    assert client.get(LIMITS, headers={"X-API-Key": reader}).status_code == 200
    response = put(client, _urls(world)["account"], {"max_order_quantity": 1}, key=reader)
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
    assert _nothing_written()
    response = put(client, _urls(world)["account"], {"max_order_quantity": 1}, key=trader)
    assert response.status_code == 200 and RiskLimit.objects.get(account=world.account).max_order_quantity == 1


def test_a_limit_set_by_the_api_refuses_the_traders_next_order_above_it(world, client):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    owner_key = api_key_create(user=world.owner, name="risk", scope="trade", allowed_ips=[])[1]
    response = put(client, _urls(world)["user"], {"max_order_quantity": 5}, key=owner_key)
    assert response.status_code == 200
    login_with_otp(client, world.trader)
    order = {
        "account_id": world.account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "990",
    }
    refused = client.post("/api/v1/orders", data=order | {"quantity": 6}, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["code"] == "max_order_quantity"
    placed = client.post("/api/v1/orders", data=order | {"quantity": 5}, content_type="application/json")
    assert placed.status_code == 201 and Order.objects.get().quantity == 5


def test_the_api_takes_and_gives_exactly_the_limit_fields(world):
    assert set(LimitsIn.model_fields) == set(LIMIT_FIELDS) == set(LimitValuesOut.model_fields)


def test_each_route_has_a_summary_in_the_openapi_docs(world, signed_in):
    paths = signed_in(world.owner).get("/api/openapi.json").json()["paths"]
    routes = [("get", LIMITS), ("put", f"{LIMITS}/organisation")]
    routes += [("put", LIMITS + "/accounts/{account_id}"), ("put", LIMITS + "/members/{user_id}")]
    for method, path in routes:
        operation = paths[path.replace("/acme/", "/{slug}/")][method]
        assert operation["summary"] and operation["tags"] == ["risk limits"]
