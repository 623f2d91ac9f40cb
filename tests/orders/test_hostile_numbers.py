"""Any JSON number (or near-number) in any numeric field of any order route, and of the order ticket,
is answered with a 2xx or a 4xx carrying a code, never a 500; a refusal writes nothing but its audit.

Bodies are sent as raw text, so literals Python's json would never write (1e400, NaN, 40-digit
integers, 1e-400) reach the server as a client could send them.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from orders.models import Order, Position, Trade
from rms.models import KillSwitch
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db

HOSTILE_LITERALS = [
    "0",
    "-0",
    "-1",
    "1",
    "1e30",
    "-1e30",
    "1e400",
    "-1e400",
    "1e-400",
    "1E+30",
    "2147483648",
    "9223372036854775808",
    "100000001",
    "10000000000",
    "990.00001",
    "0.0000000001",
    "NaN",
    "Infinity",
    "-Infinity",
    "true",
    "false",
    "null",
    '"1e400"',
    '"NaN"',
    '"-Infinity"',
    '"990"',
    '"ten"',
    '""',
    '" 10 "',
    json.dumps("9" * 5000),
    "9" * 60,
    "9" * 5000,  # beyond Python's int parsing limit: the body cannot be read (400)
    "[]",
    "{}",
]


def _float_literal(value: float) -> str:
    return json.dumps(value)  # NaN, Infinity, -Infinity as Python's json writes and reads them


literal = st.one_of(
    st.sampled_from(HOSTILE_LITERALS),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(_float_literal),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: json.dumps(str(d))),
    st.from_regex(r"-?[0-9]{1,45}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})?", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,45}(\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})?", fullmatch=True).map(json.dumps),
)
path_number = st.one_of(st.integers(min_value=0, max_value=10**40), st.sampled_from([2**31, 2**63, 10**30]))

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _rows() -> tuple:
    """What a refusal must not write: orders, trades, positions, switches, audit events but rejections."""
    return (
        Order.objects.count(),
        Trade.objects.count(),
        Position.objects.count(),
        KillSwitch.objects.count(),
        AuditEvent.objects.exclude(action="rms.rejected").count(),
    )


def _assert_answered(response, before: tuple) -> None:
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        if response["Content-Type"].startswith("application/json"):
            assert response.json()["code"], response.content
        else:
            assert re.search(rb'data-code="[a-z_]+"', response.content), response.content[:500]
        assert _rows() == before


@pytest.fixture
def api(client, world):
    login_with_otp(client, world.trader)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    return client


def _order_text(world, field: str, text: str, **changes) -> str:
    fields = {
        "account_id": world.account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "quantity": 10,
        "order_type": "SL",
        "product": "MIS",
        "price": "1010",
        "trigger_price": "1005",
    } | changes
    fields[field] = "__number__"
    return json.dumps(fields).replace('"__number__"', text)


ORDER_FIELDS = ["account_id", "instrument_id", "quantity", "price", "trigger_price"]


def test_placing_routes_answer_every_number_with_a_code(api, world):
    @EXAMPLES
    @given(
        route=st.sampled_from(["/orders", "/orders/sliced", "/orders/basket"]),
        field=st.sampled_from(ORDER_FIELDS),
        text=literal,
    )
    def run(route, field, text):
        body = _order_text(world, field, text)
        if route == "/orders/basket":
            body = f'{{"orders": [{body}]}}'
        before = _rows()
        response = api.post(f"/api/v1{route}", data=body, content_type="application/json")
        _assert_answered(response, before)

    run()


def test_modify_answers_every_number_with_a_code(api, world):
    working = api.post(
        "/api/v1/orders",
        data=_order_text(world, "price", '"990"', order_type="LIMIT", trigger_price=None),
        content_type="application/json",
    ).json()

    @EXAMPLES
    @given(field=st.sampled_from(["quantity", "price", "trigger_price"]), text=literal)
    def run(field, text):
        before = _rows()
        response = api.put(
            f"/api/v1/orders/{working['id']}", data=f'{{"{field}": {text}}}', content_type="application/json"
        )
        _assert_answered(response, before)

    run()


def test_close_position_and_kill_switch_answer_every_number_with_a_code(api, world):
    @EXAMPLES
    @given(
        route=st.sampled_from(["close", "kill"]), field=st.sampled_from(["account_id", "instrument_id"]), text=literal
    )
    def run(route, field, text):
        before = _rows()
        if route == "close":
            fields = {"account_id": world.account.pk, "instrument_id": world.equity.pk, "product": "MIS"}
            fields[field] = "__number__"
            body = json.dumps(fields).replace('"__number__"', text)
            response = api.post("/api/v1/positions/close", data=body, content_type="application/json")
        else:  # an organisation's switch, which a Trader may not engage: a number never engages one
            body = f'{{"scope": "organisation", "target_id": {text}}}'
            response = api.post("/api/v1/kill-switch", data=body, content_type="application/json")
        _assert_answered(response, before)

    run()


def test_routes_with_ids_in_the_path_answer_every_number_with_a_code(api, world):
    @EXAMPLES
    @given(number=path_number, route=st.sampled_from(["get", "delete", "orders", "cancel-all"]))
    def run(number, route):
        before = _rows()
        if route == "get":
            response = api.get(f"/api/v1/orders/{number}")
        elif route == "delete":
            response = api.delete(f"/api/v1/orders/{number}")
        elif route == "orders":
            response = api.get(f"/api/v1/accounts/{number}/orders")
        else:
            response = api.post(f"/api/v1/accounts/{number}/orders/cancel-all")
        _assert_answered(response, before)

    run()


def _form_value(text: str) -> str:
    """A literal as a form field carries it: the text of the string, or the literal's own text."""
    return json.loads(text) if text.startswith('"') else text


def test_the_order_ticket_answers_every_number_with_a_code_in_the_ticket(api, world):
    @EXAMPLES
    @given(field=st.sampled_from(["lots", "price", "trigger_price"]), text=literal)
    def run(field, text):
        data = {
            "instrument": world.equity.pk,
            "side": "SELL",
            "order_type": "SL",
            "product": "MIS",
            "lots": "1",
            "price": "990",
            "trigger_price": "995",
            "validity": "DAY",
            "form_token": uuid.uuid4().hex,
        } | {field: _form_value(text)}
        before = _rows()
        response = api.post(f"/trading/{world.account.pk}/orders/", data, HTTP_HX_REQUEST="true")
        _assert_answered(response, before)

    run()
