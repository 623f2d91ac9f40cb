"""The ticket shows the margin and charges before the order is sent, and they are what placing blocks."""

import re
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.charges import ChargeSchedule, order_charges
from orders.models import Funds, Order
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    world.quote(world.equity, "1000", bid="999.95", ask="1000.05")
    world.quote(world.future, "20000", bid="19999", ask="20001")
    return client


def _fields(world, **changes):  # noqa: F811
    return {
        "instrument": world.equity.pk,
        "side": "BUY",
        "order_type": "LIMIT",
        "product": "MIS",
        "lots": "1",
        "price": "990",
        "validity": "DAY",
    } | changes


def _preview(client, world, **changes):  # noqa: F811
    return client.get(f"/trading/{world.account.pk}/ticket/preview/", _fields(world, **changes), **HX)


def _value(html: str, name: str) -> Decimal:
    return Decimal(re.search(rf'id="preview-{name}" data-value="([^"]+)"', html).group(1))


def test_the_ticket_asks_for_its_preview_as_its_fields_change(trader_client, world):  # noqa: F811
    html = trader_client.get(f"/trading/{world.account.pk}/ticket/?instrument={world.equity.pk}", **HX).content.decode()
    assert 'id="ticket-preview"' in html and "change from:#ticket-form" in html
    assert f'hx-get="/trading/{world.account.pk}/ticket/preview/"' in html


def test_the_preview_is_what_placing_then_blocks(trader_client, world):  # noqa: F811
    fields = _fields(world, lots="7", price="995.5")
    html = _preview(trader_client, world, lots="7", price="995.5").content.decode()
    margin = _value(html, "margin")
    trader_client.post(f"/trading/{world.account.pk}/orders/", fields | {"form_token": uuid.uuid4().hex}, **HX)
    assert Order.objects.get().status == "OPEN"
    assert margin == Funds.objects.get(account=world.account).margin_blocked == Decimal("1393.70")  # 7 x 995.5 / 5


def test_the_charges_are_the_backtesters(trader_client, world):  # noqa: F811
    html = _preview(trader_client, world, side="SELL", price="1010", lots="3").content.decode()
    expected = order_charges(schedule=ChargeSchedule(), segment="equity_intraday", side="SELL", turnover=Decimal(3030))
    assert _value(html, "charges") == expected.total


def test_a_futures_lot_previews_its_contract_margin(trader_client, world):  # noqa: F811
    html = _preview(
        trader_client, world, instrument=world.future.pk, product="NRML", price="19990", lots="2"
    ).content.decode()
    assert _value(html, "margin") == Decimal("449775.00")  # 2 x 75 x 19990 x 15 %


def test_a_short_account_is_told_by_how_much(trader_client, world):  # noqa: F811
    html = _preview(trader_client, world, instrument=world.future.pk, product="NRML", price="19990", lots="400")
    assert 'data-code="insufficient_margin"' in html.content.decode()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"lots": "0"}, "lots_out_of_range"),
        ({"lots": "1e30"}, "lots_out_of_range"),
        ({"price": "abc"}, "price_not_a_number"),
        ({"price": "1e400"}, "price_out_of_range"),
        ({"side": "BUYX"}, "invalid_side"),
        ({"instrument": "987654"}, "instrument_not_found"),
    ],
)
def test_a_field_that_cannot_be_read_answers_422_with_its_code(trader_client, world, changes, code):  # noqa: F811
    response = _preview(trader_client, world, **changes)
    assert response.status_code == 422 and f'data-code="{code}"' in response.content.decode()


def test_a_limit_order_without_its_price_yet_asks_for_it_without_an_error(trader_client, world):  # noqa: F811
    # The ticket opens that way: the preview's first answer must not be an error the browser logs.
    response = _preview(trader_client, world, price="")
    assert response.status_code == 200 and 'data-code="price_required"' in response.content.decode()


@pytest.mark.parametrize("changes", [{"side": "BU\x00Y"}, {"instrument": "\x00"}, {"price": "9\x00"}])
def test_a_nul_byte_is_refused_before_the_view(trader_client, world, changes):  # noqa: F811
    assert _preview(trader_client, world, **changes).status_code == 400


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lots=st.one_of(st.text(max_size=40), st.integers(min_value=-(10**40), max_value=10**40).map(str)),
    price=st.one_of(st.text(max_size=40), st.decimals(allow_nan=True, allow_infinity=True).map(str)),
)
def test_any_lots_and_price_answer_200_or_422_never_a_500(trader_client, world, lots, price):  # noqa: F811
    response = _preview(trader_client, world, lots=lots, price=price)
    assert response.status_code in {200, 400, 422}  # 400: a NUL byte


def test_a_viewer_gets_no_preview(client, world, otp_login):  # noqa: F811
    otp_login(client, world.viewer)
    assert _preview(client, world).status_code == 403
