"""The positions book: rows the trader holds or traded today, and the day's realised, unrealised and
total P&L in its header."""

from datetime import timedelta
from decimal import Decimal

import pytest

from orders.models import Funds, Position, Trade
from orders.selectors import position_day_pnl, position_list
from orders.services import cancel_order, place_order
from orders.states import Status

pytestmark = pytest.mark.django_db


def _buy(world, *, order_type="MARKET", side="BUY", **kwargs):
    return place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, side=side, order_type=order_type, **kwargs),
        source="api",
    )


def test_an_order_that_never_filled_leaves_no_row_in_the_book(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    resting = _buy(world, order_type="LIMIT", price=Decimal("950"))
    assert resting.status == Status.OPEN
    cancel_order(actor=world.trader, order=resting)
    phantom = Position.objects.get(account=world.account, instrument=world.equity)
    assert (phantom.net_quantity, phantom.realised_pnl) == (0, 0)  # the row its margin was blocked on
    assert position_list(account=world.account) == []


def test_a_position_closed_today_at_a_profit_stays_in_the_book(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    _buy(world)
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    _buy(world, side="SELL")
    [row] = position_list(account=world.account)
    assert row["net_quantity"] == 0 and row["realised_pnl"] == Decimal("99.0000")  # (1009.95 - 1000.05) x 10


def test_a_position_closed_flat_today_stays_in_the_book(world):
    world.quote(world.equity, 1000, bid=1000, ask=1000)
    _buy(world)
    _buy(world, side="SELL")
    [row] = position_list(account=world.account)
    assert (row["net_quantity"], row["realised_pnl"]) == (0, 0)


def test_a_flat_position_whose_trades_were_on_an_earlier_day_and_made_nothing_leaves_the_book(world):
    world.quote(world.equity, 1000, bid=1000, ask=1000)
    _buy(world)
    _buy(world, side="SELL")
    Trade.objects.update(executed_at=Trade.objects.first().executed_at - timedelta(days=1))
    assert position_list(account=world.account) == []


def test_the_day_pnl_is_realised_today_plus_the_mtm_of_open_positions(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    _buy(world, quantity=20)
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    _buy(world, side="SELL", quantity=10)  # realises (1009.95 - 1000.05) x 10 = 99
    world.quote(world.equity, 990)
    positions = position_list(account=world.account)
    pnl = position_day_pnl(account=world.account, positions=positions)
    assert pnl == {
        "realised": Decimal("99.0000"),
        "unrealised": Decimal("-100.5000"),  # (990 - 1000.05) x 10 still open
        "total": Decimal("-1.5000"),
    }


def test_what_was_realised_on_an_earlier_day_is_not_todays(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    _buy(world)
    world.quote(world.equity, 1010, bid=1009.95, ask=1010.05)
    _buy(world, side="SELL")
    funds = Funds.objects.get(account=world.account)
    funds.trading_day -= timedelta(days=1)
    funds.save()
    pnl = position_day_pnl(account=world.account, positions=position_list(account=world.account))
    assert pnl == {"realised": Decimal(0), "unrealised": Decimal(0), "total": Decimal(0)}
