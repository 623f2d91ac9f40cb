"""The REST API keeps its contract: every operation documents its errors in one shape, and schemathesis,
driving the served schema in process as each role, gets no 5xx, no undocumented status and no
response that breaks its schema, while placing, modifying and cancelling real paper orders."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.http import Http404
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import credentials
from config.api import on_not_found
from orders.models import Order
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_task_queues")]

ROLES = ["owner", "admin", "trader", "viewer"]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
BOUNDED = settings(
    max_examples=6,
    deadline=None,  # a first request warms caches; the bound that matters is max_examples
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def served_schema(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


# --- The schema documents the errors ----------------------------------------------------------------
def test_the_error_shape_is_one_component_of_code_message_and_extra(served_schema):
    error = served_schema["components"]["schemas"]["ErrorOut"]
    assert error["properties"]["code"]["type"] == "string"
    assert error["properties"]["message"]["type"] == "string"
    assert error["properties"]["extra"]["type"] == "object"
    assert set(error["required"]) == {"code", "message", "extra"}


def test_every_operation_documents_its_4xx_answers_as_the_error_shape(served_schema):
    for label, operation in _operations(served_schema):
        refusals = {int(s): r for s, r in operation["responses"].items() if 400 <= int(s) < 500}
        if label in {"GET /api/health", "GET /api/health/ready"}:
            assert not refusals, label  # they take nothing and need no credential
            continue
        assert refusals, label
        for status, response in refusals.items():
            assert response["content"]["application/json"]["schema"] == ERROR_REF, (label, status)
            assert response["description"], (label, status)
        if operation.get("security"):
            assert {401, 403} <= set(refusals), label
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert 404 in refusals, label
        if "requestBody" in operation:
            assert {400, 422} <= set(refusals), label


@pytest.mark.parametrize(
    ("label", "statuses"),
    [
        ("POST /api/accounts/auth/token", {401, 429}),
        ("POST /api/v1/orders", {404, 429, 503}),
        ("PUT /api/v1/orders/{order_id}", {409, 503}),
        ("DELETE /api/v1/orders/{order_id}", {409, 503}),
        ("POST /api/v1/positions/close", {404, 503}),
        ("GET /api/marketdata/quotes", {400, 404}),
    ],
)
def test_routes_document_what_their_own_logic_answers(served_schema, label, statuses):
    operation = dict(_operations(served_schema))[label]
    assert statuses <= {int(s) for s in operation["responses"]}


def test_only_routes_that_can_refuse_a_value_document_422(served_schema):
    operations = dict(_operations(served_schema))
    assert "422" not in operations["GET /api/accounts/me"]["responses"]
    assert "422" not in operations["GET /api/v1/orgs/{slug}/limits"]["responses"]  # a slug is any string
    assert "409" not in operations["GET /api/v1/orders/{order_id}"]["responses"]


def test_a_placed_order_links_to_its_status_modification_and_cancellation(served_schema):
    links = dict(_operations(served_schema))["POST /api/v1/orders"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "orders_api_order_status",
        "orders_api_modify",
        "orders_api_cancel",
    }


# --- Refusals from outside the routes come out in the same shape --------------------------------------
def _is_error_shape(response) -> bool:
    body = response.json()
    return (
        set(body) == {"code", "message", "extra"}
        and isinstance(body["code"], str)
        and isinstance(body["message"], str)
        and isinstance(body["extra"], dict)
    )


def test_an_unknown_api_path_is_a_404_in_the_error_shape(client):
    response = client.post("/api/v2/orders", data="{}", content_type="application/json")
    assert response.status_code == 404 and _is_error_shape(response)
    assert response.json()["code"] == "not_found"


def test_a_method_the_route_does_not_serve_is_a_405_in_the_error_shape(client):
    response = client.patch("/api/v1/whoami")
    assert response.status_code == 405 and _is_error_shape(response)
    assert response.json()["code"] == "method_not_allowed" and response["Allow"] == "GET"


def test_a_404_a_route_raises_is_in_the_error_shape(rf):
    response = on_not_found(rf.get("/api/v1/orders/1"), Http404("no such order"))
    assert response.status_code == 404
    assert json.loads(response.content) == {"code": "not_found", "message": "No such route or object.", "extra": {}}


def test_no_credential_is_a_401_in_the_error_shape(client):
    response = client.get("/api/v1/orders/1")
    assert response.status_code == 401 and _is_error_shape(response)


def test_a_body_larger_than_allowed_is_a_400_in_the_error_shape(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"refresh_token": "' + "x" * 2000 + '"}'
    response = client.post("/api/accounts/auth/revoke", data=body, content_type="application/json")
    assert response.status_code == 400 and _is_error_shape(response)
    assert response.json()["code"] == "body_too_large"


# --- schemathesis, in process, as each role -----------------------------------------------------------
@pytest.fixture
def wsgi_app():
    """Django's WSGI handler in this thread, as the test client runs it: the end of a request does not
    close the connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _no_lockout_between_cases(settings):
    """The fuzzer sends bad credentials on purpose, from one address: counted against the usual limit
    they would lock every later case out with 429 too_many_failures (tests/accounts cover that)."""
    settings.AUTH_FAILURE_KEY_PREFIX = f"test-authfail:{uuid.uuid4().hex}"
    settings.AUTH_FAILURE_LIMIT = 1_000_000


@pytest.fixture
def market(world, beat_alive):  # noqa: F811
    """Liquid quotes for the world's instruments, and a deep enough purse for a few lots; beat's
    heartbeat recorded, so that /api/health answers 200 as on a healthy terminal."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    return world


def _api_key(user) -> dict[str, str]:
    _, secret = credentials.api_key_create(user=user, name="contract", scope="trade", allowed_ips=[])
    return {"X-API-Key": secret}


def _loaded(raw: dict, app, headers: dict[str, str]):
    """The schema for schemathesis, calling ``app`` in process with the role's API key on every case
    (with a credential configured it generates no others, which would only be refused)."""
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = app

    @schema.auth()
    class RoleApiKey:
        def get(self, case, ctx):
            return headers

        def set(self, case, data, ctx):
            case.headers = {**(case.headers or {}), **data}

    return schema


def _order_body(market, **changes) -> dict:
    """An order the paper exchange rests: a limit buy of the equity below its ask."""
    return {
        "account_id": market.account.pk,
        "instrument_id": market.equity.pk,
        "side": "BUY",
        "quantity": 5,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "990",
    } | changes


def _tightened(raw: dict, market) -> dict:
    """The served schema with the order body narrowed to this world's account, a quoted instrument and
    whole lots, so the state machine places real orders and follows the links to modify and cancel
    them. Only what the fuzzer sends is narrowed; every response is checked against the schema as
    served."""
    schema = copy.deepcopy(raw)
    body = schema["components"]["schemas"]["OrderIn"]
    body["properties"] = {
        "account_id": {"enum": [market.account.pk]},
        "instrument_id": {"enum": [market.equity.pk]},
        "side": {"enum": ["BUY", "SELL"]},
        "quantity": {"enum": [1, 5, 75]},
        "order_type": {"enum": ["LIMIT"]},
        "product": {"enum": ["MIS"]},
        "validity": {"enum": ["DAY"]},
        "price": {"enum": ["985", "990", "1010.5"]},
    }
    body["required"] = ["account_id", "instrument_id", "side", "quantity", "order_type", "product", "price"]
    body["additionalProperties"] = False
    return schema


def _check(case) -> None:
    case.validate_response(case.call(), checks=CHECKS)


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_keeps_its_contract_for(role, served_schema, market, wsgi_app):
    """Generated requests (valid and invalid) to every operation, as a member of each role."""
    headers = _api_key(getattr(market, role))
    schema = _loaded(served_schema, wsgi_app, headers)
    for result in schema.get_all_operations():
        operation = result.ok()
        # An operation that takes nothing has no invalid request to make.
        takes_input = bool(operation.body) or any(True for _ in operation.iter_parameters())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[: 2 if takes_input else 1]:

            @given(case=operation.as_strategy(generation_mode=mode, auth_storage=schema.auth))
            @BOUNDED
            def run(case):
                _check(case)

            run()


@pytest.mark.parametrize("role", ROLES)
def test_explicit_orders_keep_their_contract_for(role, served_schema, market, wsgi_app):
    """Real paper orders, placed, read, modified and cancelled with explicit data; a Viewer is refused."""
    headers = _api_key(getattr(market, role))
    schema = _loaded(served_schema, wsgi_app, headers)
    place = schema["/api/v1/orders"]["POST"]
    for body in (_order_body(market), _order_body(market, instrument_id=market.future.pk, quantity=75, price="19990")):
        case = place.Case(body=body, headers=headers)
        response = case.call()
        case.validate_response(response, checks=CHECKS)
        if role == "viewer":
            assert response.status_code == 403
            continue
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        order = schema["/api/v1/orders/{order_id}"]
        lower = {"price": "989.5" if body["quantity"] == 5 else "19989.9"}
        for case in (
            order["GET"].Case(path_parameters={"order_id": order_id}, headers=headers),
            order["PUT"].Case(path_parameters={"order_id": order_id}, body=lower, headers=headers),
        ):
            response = case.call()
            case.validate_response(response, checks=CHECKS)
            assert response.status_code == 200, response.text
        cancel = schema["/api/v1/orders/{order_id}"]["DELETE"].Case(
            path_parameters={"order_id": order_id}, headers=headers
        )
        response = cancel.call()
        cancel.validate_response(response, checks=CHECKS)
        assert response.json()["status"] == "CANCELLED"
    if role != "viewer":
        assert Order.objects.filter(status="CANCELLED").count() == 2


def test_a_modification_to_an_unknown_order_type_is_refused_by_name(client, market):
    """Found by schemathesis: an order type PostgreSQL's column cannot hold was a 500 (and SQLite kept it)."""
    headers = _api_key(market.trader)
    placed = client.post("/api/v1/orders", _order_body(market), content_type="application/json", headers=headers)
    order_id = placed.json()["id"]
    response = client.put(
        f"/api/v1/orders/{order_id}", {"order_type": "STOP-LIMIT-X"}, content_type="application/json", headers=headers
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_order_type"
    assert Order.objects.get(pk=order_id).order_type == "LIMIT"


@pytest.mark.parametrize("role", ROLES)
def test_order_workflows_keep_their_contract_for(role, served_schema, market, wsgi_app):
    """schemathesis' state machine follows the links: place, then read, modify and cancel that order."""
    headers = _api_key(getattr(market, role))
    schema = _loaded(_tightened(served_schema, market), wsgi_app, headers)
    schema = schema.include(path_regex=r"^/api/v1/orders(/\{order_id\})?$")

    class Workflow(schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Workflow.run(
        settings=settings(
            max_examples=8,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    if role != "viewer":
        assert Order.objects.exists(), "the state machine placed no order"
        assert Order.objects.filter(status="CANCELLED").exists(), "it cancelled none of them"
