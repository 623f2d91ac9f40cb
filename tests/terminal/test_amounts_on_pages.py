"""The trading panels show money as rupees with Indian grouping and prices with their tick's places, the
same in the page and in the rows pushed over /ws/user/; data attributes and inputs keep plain decimals."""

from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.models import Instrument
from orders.models import Funds, Order, Position, Status, Trade
from orders.push import render_order_change
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    return client


@pytest.fixture
def usdinr(world):  # noqa: F811
    """A currency future: its tick, 0.0025, needs four places."""
    return Instrument.objects.create(
        exchange="CDS",
        segment="CDS-FUT",
        tradingsymbol="USDINRFUT",
        exchange_token="1001",
        instrument_type="FUT",
        underlying="USDINR",
        expiry=world.future.expiry,
        lot_size=1000,
        tick_size=Decimal("0.0025"),
    )


def _panel(client, world, name):  # noqa: F811
    response = client.get(f"/trading/{world.account.pk}/panels/{name}/", **HX)
    assert response.status_code == 200
    return response.content.decode()


def test_the_funds_panel_shows_rupees_with_indian_grouping(trader_client, world):  # noqa: F811
    Funds.objects.create(
        account=world.account,
        opening_balance=Decimal("1699000000000"),
        margin_blocked=Decimal("123456.5"),
        realised_pnl=Decimal("-1234.5"),
        realised_today=Decimal("0"),
    )
    html = _panel(trader_client, world, "funds")
    assert '<dd class="num">₹16,99,00,00,00,000.00</dd>' in html  # opening balance
    assert '<dd class="num">₹1,23,456.50</dd>' in html  # margin blocked
    assert '<dd class="num">-₹1,234.50</dd>' in html  # realised P&L, a loss
    assert '<dd class="num">₹0.00</dd>' in html  # realised today


def test_positions_show_pnl_in_rupees_and_prices_with_the_ticks_places(trader_client, world):  # noqa: F811
    Position.objects.create(
        account=world.account,
        instrument=world.future,
        product="NRML",
        net_quantity=-750,
        average_price=Decimal("22450.1"),
        realised_pnl=Decimal("-1250000"),
    )
    world.quote(world.future, "22500", tick=False)
    html = _panel(trader_client, world, "positions")
    assert '<td class="avg num">22,450.10</td>' in html
    assert '<td class="ltp num">22,500.00</td>' in html
    assert '<td class="pnl num">-₹12,50,000.00</td>' in html
    assert ">-₹37,425.00</td>" in html  # MTM: short 750 from 22450.10 to 22500


def test_the_order_book_shows_prices_with_the_ticks_places_and_plain_inputs(trader_client, world, usdinr):  # noqa: F811
    Order.objects.create(
        account=world.account,
        placed_by=world.trader,
        instrument=world.future,
        side="BUY",
        quantity=75,
        order_type="SL",
        product="NRML",
        price=Decimal("22450.1"),
        trigger_price=Decimal("22440"),
        margin_price=Decimal("22450.1"),
        status=Status.OPEN,
        source="web",
    )
    Order.objects.create(
        account=world.account,
        placed_by=world.trader,
        instrument=usdinr,
        side="SELL",
        quantity=1000,
        order_type="LIMIT",
        product="NRML",
        price=Decimal("83.1225"),
        margin_price=Decimal("83.1225"),
        status=Status.OPEN,
        source="web",
    )
    html = _panel(trader_client, world, "orders")
    assert '<td class="price num">22,450.10 (trg 22,440.00)</td>' in html
    assert '<td class="price num">83.1225</td>' in html
    # What the modify form sends back stays a plain decimal, at the tick's precision.
    assert 'name="price" type="number" step="any" value="22450.10"' in html
    assert 'name="trigger_price" type="number" step="any" value="22440.00"' in html
    assert 'name="price" type="number" step="any" value="83.1225"' in html


def test_the_pushed_order_trade_and_position_rows_read_like_the_page(world):  # noqa: F811
    order = Order.objects.create(
        account=world.account,
        placed_by=world.trader,
        instrument=world.future,
        side="SELL",
        quantity=75,
        filled_quantity=75,
        order_type="MARKET",
        product="NRML",
        average_price=Decimal("22450.1"),
        margin_price=Decimal("22450.1"),
        status=Status.FILLED,
        source="web",
    )
    trade = Trade.objects.create(
        account=world.account,
        order=order,
        instrument=world.future,
        side="SELL",
        product="NRML",
        quantity=75,
        price=Decimal("22450.1"),
        broker_trade_id="T1",
        executed_at=timezone.now(),
    )
    Position.objects.create(
        account=world.account,
        instrument=world.future,
        product="NRML",
        net_quantity=-75,
        average_price=Decimal("22450.1"),
        realised_pnl=Decimal("123456.7"),
    )
    world.quote(world.future, "22400", tick=False)
    html = render_order_change(order, trade)
    assert '<td class="avg num">22,450.10</td>' in html  # the order's average price
    assert '<td class="price num">22,450.10</td>' in html  # the trade
    assert '<td class="pnl num">₹1,23,456.70</td>' in html
    assert ">₹3,757.50</td>" in html  # MTM: short 75 from 22450.10 to 22400
