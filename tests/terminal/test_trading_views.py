"""The trading panels' acts through plain and HTMX posts: same services as the API, clear errors."""

import uuid

import pytest

from orders.models import Order, Status
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    world.quote(world.equity, "1000", bid="999.95", ask="1000.05")
    return client


def _place(client, world, **fields):  # noqa: F811
    data = {
        "instrument": world.equity.pk,
        "side": "BUY",
        "order_type": "LIMIT",
        "product": "MIS",
        "lots": "1",
        "price": "990",
        "validity": "DAY",
        "form_token": uuid.uuid4().hex,
    } | fields
    return client.post(f"/trading/{world.account.pk}/orders/", data, **HX)


def test_a_limit_order_from_the_ticket_rests_in_the_book(trader_client, world):  # noqa: F811
    response = _place(trader_client, world)
    assert response.status_code == 200
    order = Order.objects.get()
    assert (order.status, order.source, order.price) == (Status.OPEN, "web", 990)
    assert f'id="order-{order.pk}"' in response.content.decode()


def test_a_double_submitted_ticket_places_one_order(trader_client, world):  # noqa: F811
    token = uuid.uuid4().hex
    _place(trader_client, world, form_token=token)
    _place(trader_client, world, form_token=token)
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"lots": "0"}, "lots_out_of_range"),
        ({"lots": "many"}, "lots_not_a_number"),
        ({"lots": "1e30"}, "lots_out_of_range"),
        ({"lots": "1000000000000000000000000000000"}, "lots_out_of_range"),
        ({"lots": "1.5"}, "lots_not_whole"),
        ({"price": "abc"}, "price_not_a_number"),
        ({"price": "NaN"}, "price_not_finite"),
        ({"price": "1e400"}, "price_out_of_range"),
        ({"price": "990.00001"}, "price_too_precise"),
        ({"order_type": "SL", "trigger_price": "-Infinity"}, "trigger_price_not_finite"),
        ({"price": ""}, ""),  # LIMIT without a price: the order service names the rule
        ({"price": "990.03"}, ""),  # off the tick
        ({"order_type": "SL"}, ""),  # SL without a trigger
    ],
)
def test_bad_ticket_input_is_a_422_in_the_ticket_and_places_nothing(trader_client, world, fields, code):  # noqa: F811
    response = _place(trader_client, world, **fields)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'role="alert"' in page and 'id="ticket-form"' in page
    if code:
        assert f'data-code="{code}"' in page
    assert not Order.objects.exclude(status=Status.REJECTED).exists()


def test_a_viewer_cannot_open_the_ticket_or_place(client, world, otp_login):  # noqa: F811
    otp_login(client, world.viewer)
    assert client.get(f"/trading/{world.account.pk}/ticket/?instrument={world.equity.pk}").status_code == 403
    assert _place(client, world).status_code == 403
    assert not Order.objects.exists()


def test_modify_and_cancel_from_the_book(trader_client, world):  # noqa: F811
    _place(trader_client, world)
    order = Order.objects.get()
    modified = trader_client.post(f"/trading/orders/{order.pk}/modify/", {"price": "995"}, **HX)
    assert modified.status_code == 200
    order.refresh_from_db()
    assert order.price == 995
    bad = trader_client.post(f"/trading/orders/{order.pk}/modify/", {"price": "x"}, **HX)
    assert bad.status_code == 422 and 'data-code="price_not_a_number"' in bad.content.decode()
    huge = trader_client.post(f"/trading/orders/{order.pk}/modify/", {"lots": "1e30"}, **HX)
    assert huge.status_code == 422 and 'data-code="lots_out_of_range"' in huge.content.decode()
    cancelled = trader_client.post(f"/trading/orders/{order.pk}/cancel/", **HX)
    assert cancelled.status_code == 200
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    again = trader_client.post(f"/trading/orders/{order.pk}/cancel/", **HX)
    assert again.status_code == 409 and 'role="alert"' in again.content.decode()


def test_the_kill_switch_needs_confirmation_then_refuses_orders(trader_client, world):  # noqa: F811
    unconfirmed = trader_client.post(f"/trading/{world.account.pk}/kill-switch/", **HX)
    assert unconfirmed.status_code == 422 and "confirmation_required" in unconfirmed.content.decode()
    engaged = trader_client.post(f"/trading/{world.account.pk}/kill-switch/", {"confirm": "yes"}, **HX)
    assert engaged.status_code == 200 and "Kill switch ON" in engaged.content.decode()
    refused = _place(trader_client, world)
    assert refused.status_code in (403, 409, 422) and 'role="alert"' in refused.content.decode()
    released = trader_client.post(f"/trading/{world.account.pk}/kill-switch/", {"action": "release"}, **HX)
    assert released.status_code == 403  # a Trader may halt but only an Owner or Admin lifts it


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"lots": "1000000000000000000000000000000"}, "lots"), ({"price": "1e400"}, "price")],
)
def test_a_refused_number_is_shown_next_to_its_field_in_the_ticket(trader_client, world, fields, field):  # noqa: F811
    response = _place(trader_client, world, **fields)
    page = response.content.decode()
    assert response.status_code == 422 and f'data-field-error="{field}"' in page and 'aria-invalid="true"' in page
    assert not Order.objects.exists()


def test_while_the_quote_store_is_unreachable_the_ticket_refuses_in_place_and_places_nothing(
    trader_client,
    world,  # noqa: F811
    monkeypatch,
):
    import socket

    from marketdata import quotes

    with socket.socket() as sock:  # a port nobody listens on once closed: Redis down
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setattr(quotes, "_store", quotes._RedisStore(f"redis://127.0.0.1:{sock.getsockname()[1]}/0"))
    response = _place(trader_client, world)
    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-code="quotes_unavailable"' in page and 'id="ticket-form"' in page
    assert not Order.objects.exists()
    ticket = trader_client.get(f"/trading/{world.account.pk}/ticket/?instrument={world.equity.pk}&side=BUY", **HX)
    assert ticket.status_code == 200 and 'id="ticket-form"' in ticket.content.decode()
