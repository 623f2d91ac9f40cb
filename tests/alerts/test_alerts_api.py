"""The alerts API: a user creates, reads, replaces and deletes their own alerts; bad input of any
kind is a 4xx naming the field, and nothing is saved; creating and deleting are audited."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.models import Alert
from audit.models import AuditEvent
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
URL = "/api/v1/alerts"


def post(client, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json")


@pytest.fixture
def trader(world, client):
    login_with_otp(client, world.trader)
    return client


def test_a_trader_creates_reads_replaces_and_deletes_an_alert(world, trader):
    created = post(trader, {"instrument": world.equity.pk, "condition": "ltp_above", "level": "1000.05"})
    assert created.status_code == 201, created.content
    alert = created.json()
    assert alert["state"] == "active" and Decimal(alert["level"]) == Decimal("1000.05")
    assert AuditEvent.objects.filter(action="alert.created").count() == 1
    assert trader.get(f"{URL}/{alert['id']}").json()["condition"] == "ltp_above"
    replaced = trader.put(
        f"{URL}/{alert['id']}",
        data=json.dumps({"instrument": world.equity.pk, "condition": "cross_down", "level": 990}),
        content_type="application/json",
    )
    assert replaced.status_code == 200 and replaced.json()["condition"] == "cross_down"
    assert [a["id"] for a in trader.get(URL).json()] == [alert["id"]]
    assert trader.get(f"{URL}/{alert['id']}/firings").json() == []
    assert trader.delete(f"{URL}/{alert['id']}").status_code == 204
    assert not Alert.objects.exists()
    assert AuditEvent.objects.filter(action="alert.deleted").count() == 1


def test_another_users_alert_is_not_found(world, client, trader):
    alert = post(trader, {"instrument": world.equity.pk, "condition": "ltp_above", "level": 1000}).json()
    login_with_otp(client, world.viewer)
    assert client.get(f"{URL}/{alert['id']}").status_code == 404
    assert client.delete(f"{URL}/{alert['id']}").status_code == 404
    assert Alert.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"instrument": 999999, "condition": "ltp_above", "level": 10}, "instrument", "unknown_instrument"),
        ({"condition": "ltp_above", "level": 10}, "instrument", "required"),
        ({"instrument": "EQ", "condition": "ltp_above", "level": 10}, "instrument", "not_a_whole_number"),
        ({"condition": "ltp_above", "level": -5}, "level", "wrong_sign"),
        ({"condition": "cross_up", "level": 0}, "level", "wrong_sign"),
        ({"condition": "change_below", "level": -100}, "level", "wrong_sign"),
        ({"condition": "ltp_above", "level": "1e999999"}, "level", "out_of_range"),
        ({"condition": "ltp_above", "level": 1e300}, "level", "out_of_range"),
        ({"condition": "ltp_above", "level": "NaN"}, "level", "not_a_number"),
        ({"condition": "ltp_above", "level": "10.00001"}, "level", "too_precise"),
        ({"condition": "ltp_above", "level": "9" * 60}, "level", "not_a_number"),
        ({"condition": "up_and_away", "level": 10}, "condition", "unknown_choice"),
        ({"condition": "ma_cross_up", "average": "sma"}, "average_minutes", "required"),
        ({"condition": "ma_cross_up", "average": "wma", "average_minutes": 5}, "average", "unknown_choice"),
        ({"condition": "ltp_above", "level": 10, "cooldown_seconds": 10**30}, "cooldown_seconds", "out_of_range"),
        ({"condition": "ltp_above", "level": 10, "notify_telegram": True}, "notify_telegram", "telegram_not_set_up"),
        ({"condition": "ltp_above", "level": 10, "notify_email": True}, "notify_email", "no_email"),
        ({"condition": "ltp_above", "level": 10, "account": 10**9}, "account", "account_not_tradable"),
        ({"condition": "ltp_above", "level": 10, "wat": 1}, "wat", "unknown_field"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_saved(world, trader, body, field, code):
    body = {"instrument": world.equity.pk, **body} if "instrument" not in body and field != "instrument" else body
    response = post(trader, body)
    assert response.status_code == 422, response.content
    answer = response.json()
    assert answer["extra"]["fields"][field]["code"] == code, answer
    assert field in answer["message"]
    assert not Alert.objects.exists() and not AuditEvent.objects.filter(action="alert.created").exists()


def test_a_trigger_order_on_an_account_the_viewer_may_only_view_is_refused(world, client):
    login_with_otp(client, world.viewer)
    response = post(
        client,
        {"instrument": world.equity.pk, "condition": "ltp_above", "level": 10, "account": world.account.pk},
    )
    assert response.status_code == 422
    assert response.json()["extra"]["fields"]["account"]["code"] == "account_not_tradable"


def test_a_trigger_order_needs_its_side_and_lots_and_a_tradable_instrument(world, trader):
    response = post(
        trader,
        {
            "instrument": world.equity.pk,
            "condition": "ltp_above",
            "level": 10,
            "account": world.account.pk,
            "order_type": "LIMIT",
        },
    )
    fields = response.json()["extra"]["fields"]
    assert set(fields) == {"order_side", "order_lots", "order_price"}
    assert not Alert.objects.exists()


def test_nul_bytes_and_bodies_that_are_not_objects_are_refused_cleanly(world, trader):
    refused = post(trader, {"instrument": world.equity.pk, "condition": "ltp_above", "level": 10, "note": "a\u0000b"})
    assert refused.status_code == 400 and refused.json()["code"] == "nul_byte"
    assert post(trader, "[1, 2]").status_code in (400, 422)
    assert post(trader, "not json").status_code == 400
    assert not Alert.objects.exists()


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "instrument": values,
            "condition": st.one_of(st.sampled_from(["ltp_above", "change_below", "ma_cross_up"]), values),
            "level": values,
            "average": values,
            "average_minutes": values,
            "cooldown_seconds": values,
            "order_lots": values,
            "account": values,
            "note": values,
        },
    )
)
def test_no_body_ever_gets_a_server_error_or_saves_half_an_alert(world, trader, body):
    try:
        data = json.dumps(body)
    except ValueError:
        return
    response = post(trader, data)
    assert response.status_code in (201, 400, 422), response.content
    if response.status_code == 201:
        Alert.objects.all().delete()
    else:
        assert not Alert.objects.exists()
        assert "code" in response.json()
