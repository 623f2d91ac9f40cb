"""The P&L report (orders/reports/pnl.py) against figures worked out by hand, charges included.

Charges are the default schedule's (brokers/charges.py, Zerodha's published list; tests/brokers/test_charges.py):
- buy 10 RELIANCE @ 1000 MIS (10,000): brokerage 3.00, exchange 0.297 -> 0.30, SEBI 0.01, stamp 0.30,
  GST 18 % of 3.31 = 0.5958 -> 0.60: 4.21;
- sell 10 @ 1010 MIS (10,100): brokerage 3.03, STT 2.525 -> 2.53, exchange 0.29997 -> 0.30, SEBI 0.01,
  GST 18 % of 3.34 = 0.6012 -> 0.60: 6.47;
- buy 75 NIFTYFUT @ 22,000 NRML (16,50,000): brokerage 20, exchange 28.545 -> 28.55, SEBI 1.65, stamp 33.00,
  GST 18 % of 50.20 = 9.036 -> 9.04: 92.24.
Realised 100 (10 x 10); the future open at 22,000, marked at 22,100: 7,500 unrealised.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from orders.reports.periods import DateRange
from orders.reports.pnl import pnl_report
from tests.reports.recorded import record
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

DAY = DateRange(date(2026, 3, 2), date(2026, 3, 2))


def hand_computed_day(world):  # noqa: F811
    record(world.account, world.equity, "BUY", 10, 1000, "2026-03-02 09:20")
    record(world.account, world.equity, "SELL", 10, 1010, "2026-03-02 10:05")
    record(world.account, world.future, "BUY", 75, 22000, "2026-03-02 11:00", product="NRML")
    world.quote(world.future, 22100, tick=False)


@pytest.mark.django_db
def test_a_days_pnl_matches_the_hand_computed_realised_unrealised_charges_and_net(world):  # noqa: F811
    hand_computed_day(world)
    report = pnl_report(account=world.account, period=DAY)
    t = report.totals
    assert (t.realised, t.unrealised, t.charges.total, t.gross, t.net, t.trades) == (
        D("100"),
        D("7500"),
        D("102.92"),
        D("7600"),
        D("7497.08"),
        3,
    )
    c = t.charges
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == (
        D("26.03"),
        D("2.53"),
        D("29.15"),
        D("1.67"),
        D("33.30"),
        D("10.24"),
    )
    reliance, future = report.symbols[1], report.symbols[0]  # NFO sorts before NSE
    assert (reliance.instrument.tradingsymbol, reliance.segment, reliance.realised, reliance.charges.total) == (
        "RELIANCE",
        "equity_intraday",
        D("100"),
        D("10.68"),
    )
    assert (future.open_quantity, future.average_price, future.ltp, future.unrealised, future.charges.total) == (
        75,
        D("22000"),
        D("22100"),
        D("7500"),
        D("92.24"),
    )
    assert [(name, totals.net) for name, _, totals in report.segments] == [
        ("equity_intraday", D("89.32")),
        ("futures", D("7407.76")),
    ]
    [(day, figures)] = report.days
    assert (day, figures.realised, figures.charges.total, figures.trades) == (
        date(2026, 3, 2),
        D("100"),
        D("102.92"),
        3,
    )


@pytest.mark.django_db
def test_an_order_filled_in_two_trades_pays_brokerage_once_on_its_whole_turnover(world):  # noqa: F811
    first = record(world.account, world.equity, "BUY", 4, 1000, "2026-03-02 09:20")
    record(world.account, world.equity, "BUY", 6, 1000, "2026-03-02 09:21", order=first.order)
    report = pnl_report(account=world.account, period=DAY)
    assert report.totals.charges.total == D("4.21")  # as one order of 10,000, not 1.2 + 1.8 + GST apart
    assert report.totals.trades == 2


@pytest.mark.django_db
def test_a_position_opened_before_the_range_closes_in_it_at_its_own_average(world):  # noqa: F811
    record(world.account, world.equity, "BUY", 10, 900, "2026-02-27 10:00", product="CNC")
    record(world.account, world.equity, "SELL", 10, 1000, "2026-03-02 10:00", product="CNC")
    report = pnl_report(account=world.account, period=DAY)
    [row] = report.symbols
    # 10 x (1000 - 900); the buy is before the range: its quantity and charges are not in it.
    assert (row.realised, row.buy_quantity, row.sell_quantity, row.open_quantity) == (D("1000"), 0, 10, 0)
    # Delivery sell of 10,000: STT 10.00, exchange 0.30, SEBI 0.01, GST 18 % of 0.31 = 0.06.
    assert row.charges.total == D("10.37")


@pytest.mark.django_db
def test_days_outside_the_range_and_other_accounts_trades_are_left_out(world):  # noqa: F811
    from brokers.models import BrokerAccount

    other = BrokerAccount.objects.create(organisation=world.org, label="Other", broker="paper", client_code="P2")
    record(other, world.equity, "BUY", 10, 1000, "2026-03-02 09:20")
    record(world.account, world.equity, "BUY", 10, 1000, "2026-03-03 00:00")  # midnight IST: the next day
    record(world.account, world.equity, "BUY", 10, 1000, "2026-03-01 23:59")
    report = pnl_report(account=world.account, period=DAY)
    assert report.symbols == [] and report.totals.trades == 0


@pytest.mark.django_db
def test_a_range_of_days_totals_each_day_and_keeps_them_in_order(world):  # noqa: F811
    for day in ("2026-03-04", "2026-03-02", "2026-03-03"):
        record(world.account, world.equity, "BUY", 10, 1000, f"{day} 09:20")
        record(world.account, world.equity, "SELL", 10, 1001, f"{day} 15:00")
    report = pnl_report(account=world.account, period=DateRange(date(2026, 3, 2), date(2026, 3, 4)))
    assert [(day.isoformat(), t.realised) for day, t in report.days] == [
        ("2026-03-02", D("10")),
        ("2026-03-03", D("10")),
        ("2026-03-04", D("10")),
    ]
    assert report.totals.realised == D("30")
