"""The positions panel: the day's realised, unrealised and total P&L in its header, and no row for an
order that never filled."""

import re
from decimal import Decimal

import pytest

from orders.services import cancel_order, place_order
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


def _order(acme, side="BUY", order_type="MARKET", **kwargs):
    return place_order(
        actor=acme.trader,
        account=acme.account,
        request=acme.request(acme.equity, side=side, order_type=order_type, **kwargs),
        source="web",
    )


def _panel(client, acme) -> str:
    response = client.get(f"/trading/{acme.account.pk}/panels/positions/", **HX)
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.django_db
def test_the_header_shows_realised_unrealised_and_total_for_the_day(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    _order(world, quantity=20)
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    _order(world, side="SELL", quantity=10)  # realises 99.00
    world.quote(world.equity, 990)  # the 10 still open: -100.50
    page = _panel(client, world)
    assert re.search(r'<dt>Realised today</dt><dd id="pnl-realised" class="num profit">₹99\.00</dd>', page)
    assert re.search(r'<dt>Unrealised \(MTM\)</dt><dd id="pnl-unrealised" class="num loss">-₹100\.50</dd>', page)
    assert re.search(r'<dt>Total today</dt><dd id="pnl-total" class="num loss"><strong>-₹1\.50</strong></dd>', page)


@pytest.mark.django_db
def test_an_order_that_never_filled_shows_no_position_row(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    cancel_order(actor=world.trader, order=_order(world, order_type="LIMIT", price=Decimal("950")))
    page = _panel(client, world)
    assert 'class="position-row"' not in page and "No positions." in page
