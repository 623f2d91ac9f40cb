"""The order book partial: rows formatted once by orders.selectors.order_row, no query per row, and
the same row HTML for the page and the live update."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order, Status
from orders.push import render_order_change
from orders.selectors import order_row
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


def _order(world, instrument=None, **fields):  # noqa: F811
    values = {
        "account": world.account,
        "placed_by": world.trader,
        "instrument": instrument or world.equity,
        "side": "BUY",
        "quantity": 10,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": Decimal("1000"),
        "margin_price": Decimal("1000"),
        "status": Status.OPEN,
        "source": "web",
    } | fields
    return Order.objects.create(**values)


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    return client


def _book(client, world):  # noqa: F811
    response = client.get(f"/trading/{world.account.pk}/panels/orders/", **HX)
    assert response.status_code == 200
    return response.content.decode()


def test_the_book_costs_the_same_queries_for_one_order_as_for_forty(trader_client, world):  # noqa: F811
    _order(world)
    _book(trader_client, world)  # warm the session and the account lookup caches
    with CaptureQueriesContext(connection) as one:
        _book(trader_client, world)
    for n in range(39):
        _order(world, instrument=world.future if n % 2 else world.equity, quantity=75, status=Status.FILLED)
    with CaptureQueriesContext(connection) as forty:
        page = _book(trader_client, world)
    assert page.count('class="order-row') == 40
    assert len(forty) == len(one)


def test_a_working_row_offers_modify_and_cancel_at_the_routes_of_those_acts(trader_client, world):  # noqa: F811
    order = _order(world, order_type="SL", price=Decimal("1000"), trigger_price=Decimal("999.5"))
    page = _book(trader_client, world)
    for name in ("order-modify", "order-cancel"):
        url = reverse(name, args=[order.pk])
        assert f'action="{url}"' in page and f'hx-post="{url}"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="price" type="number" step="any" value="1000.00"' in page
    assert 'name="trigger_price" type="number" step="any" value="999.50"' in page


def test_a_row_shows_what_the_trader_needs_formatted(world):  # noqa: F811
    stop_market = _order(world, world.future, quantity=150, order_type="SL-M", price=None, trigger_price=Decimal("99"))
    row = order_row(stop_market)
    assert row["symbol"] == "NFO:NIFTYFUT" and row["type"] == "SL-M · MIS · DAY"
    assert row["price"] == "MKT (trg 99.00)" and row["quantity"] == "0/150" and row["lots"] == "2"
    assert row["working"] and row["price_input"] is None and row["trigger_input"] == "99.00"
    filled = order_row(_order(world, status=Status.FILLED, filled_quantity=10, average_price=Decimal("999.955")))
    assert filled["average_price"] == "999.96" and filled["status"] == "Filled" and not filled["working"]
    rejected = order_row(_order(world, status=Status.REJECTED, message="x" * 100))
    assert rejected["note"] == "x" * 59 + "…" and rejected["message"] == "x" * 100


def _row(html: str, order_id: int) -> str:
    """The row of ``order_id`` without what differs by design: the oob marker and CSRF inputs (the pushed
    row is rendered once for all its recipients, without a request: each page gives its forms its own
    token, tests/orders/test_live_updates.py)."""
    start = html.index(f'<tr id="order-{order_id}"')
    row = html[start : html.index("</tr>", start)]
    return re.sub(r'<input type="hidden" name="csrfmiddlewaretoken" value="[^"]*">', "", row).replace(
        ' hx-swap-oob="true"', ""
    )


def test_the_pushed_row_is_the_row_the_book_shows(trader_client, world):  # noqa: F811
    order = _order(world, message="<b>not markup</b>")
    page = _book(trader_client, world)
    pushed = render_order_change(order)
    assert 'hx-swap-oob="true"' in pushed
    assert _row(pushed, order.pk) == _row(page, order.pk)
    assert "&lt;b&gt;not markup&lt;/b&gt;" in page and "<b>" not in page


def test_a_settled_row_is_reused_only_while_its_order_reads_the_same(trader_client, world):  # noqa: F811
    order = _order(world, status=Status.REJECTED, message="<i>price band</i>")
    first = _book(trader_client, world)
    again = _book(trader_client, world)  # from the process's settled rows
    assert _row(again, order.pk) == _row(first, order.pk) == _row(render_order_change(order), order.pk)
    assert "&lt;i&gt;price band&lt;/i&gt;" in again and "<i>" not in again
    Order.objects.filter(pk=order.pk).update(message="margin short")  # no updated_at: the values are the key
    changed = _book(trader_client, world)
    assert "margin short" in _row(changed, order.pk) and "price band" not in changed


def test_the_book_mixes_working_rows_with_their_token_and_settled_rows_in_order(trader_client, world):  # noqa: F811
    settled = [_order(world, status=Status.FILLED, filled_quantity=10, average_price=Decimal("1000")) for _ in range(3)]
    working = _order(world)
    page = _book(trader_client, world)
    ids = [int(found) for found in re.findall(r'<tr id="order-(\d+)"', page)]
    assert ids == sorted([o.pk for o in [*settled, working]], reverse=True)

    def raw(order_id: int) -> str:
        start = page.index(f'<tr id="order-{order_id}"')
        return page[start : page.index("</tr>", start)]

    assert raw(working.pk).count('name="csrfmiddlewaretoken"') == 2  # modify and cancel
    assert all("csrfmiddlewaretoken" not in raw(o.pk) for o in settled)
    # Rows are reused across pages with a marker for the token: each page's rows carry its own token.
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]*)"', page)
    assert len(set(tokens)) == 1 and re.fullmatch(r"[A-Za-z0-9]{64}", tokens[0]) and "\x00" not in page


def test_rows_rendered_without_a_token_offer_their_forms_without_one(world):  # noqa: F811
    from terminal.templatetags.order_book import order_rows

    working = order_row(_order(world))
    html = order_rows({}, [working])
    assert "csrfmiddlewaretoken" not in html and "\x00" not in html
    assert f'action="{reverse("order-cancel", args=[working["id"]])}"' in html
