"""The backtest report's metrics against values worked out by hand (strategies/backtest/report.py).

The equity of a three-day run from a capital of 1000 (IST): 30 Mar 10:00 1000, 15:00 1100 (the peak);
31 Mar 10:00 990, 15:00 1045; 1 Apr 10:00 1100 (back at the peak), 15:00 1210.
Daily closes 1100, 1045, 1210, so daily returns 0.1, -0.05 and 1210/1045 - 1 = 0.157894737.
  mean 0.069298246; sample stdev 0.107293 -> Sharpe 0.069298246 / 0.107293 x sqrt(252) = 10.2529.
  downside deviation sqrt(0.05^2 / 3) = 0.0288675 -> Sortino 0.069298246 / 0.0288675 x sqrt(252) = 38.1077.
Drawdown: from the 1100 peak to 990, 110 or 10 %, under water from 30 Mar 15:00 to 1 Apr 10:00, 43 h =
1.791667 days. CAGR over 3 calendar days: 1.21 ^ (365 / 3) - 1; Calmar that over 0.1.
Trades net 100, -40, 60, 20, -10: 3 winners of 5 (0.6), profit factor 180 / 50 = 3.6, expectancy 130 / 5 =
26, average win 60, average loss -25, longest streaks 2 wins and 1 loss.
Monthly: March 1045 / 1000 - 1 = 0.045, April 1210 / 1045 - 1 = 0.157894737.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from marketdata.hours import IST
from strategies.backtest.engine import BacktestResult, RoundTrip
from strategies.backtest.report import equity_curve, metrics, monthly_returns, trades_csv


def at(day: int, month: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=IST)


def result() -> BacktestResult:
    equity = [
        (at(30, 3, 10), Decimal(1000)),
        (at(30, 3, 15), Decimal(1100)),
        (at(31, 3, 10), Decimal(990)),
        (at(31, 3, 15), Decimal(1045)),
        (at(1, 4, 10), Decimal(1100)),
        (at(1, 4, 15), Decimal(1210)),
    ]
    trades = [
        RoundTrip(leg="main", instrument_id=1, direction="long", quantity=1, gross_pnl=Decimal(net))
        for net in (100, -40, 60, 20, -10)
    ]
    return BacktestResult(
        initial_capital=Decimal(1000), cash=Decimal(1210), equity=equity, trades=trades, exposed_minutes=3, bars=6
    )


def test_the_metrics_match_the_hand_computed_values():
    m = metrics(result())
    assert m["net_pnl"] == "210.00"
    assert m["total_return"] == pytest.approx(0.21)
    assert m["sharpe"] == pytest.approx(10.252908, abs=1e-5)
    assert m["sortino"] == pytest.approx(38.107735, abs=1e-5)
    assert m["max_drawdown"] == "110.00"
    assert m["max_drawdown_pct"] == pytest.approx(0.1)
    assert m["max_drawdown_days"] == pytest.approx(43 / 24, abs=1e-4)
    assert m["cagr"] == pytest.approx(1.21 ** (365 / 3) - 1, rel=1e-6)
    assert m["calmar"] == pytest.approx((1.21 ** (365 / 3) - 1) / 0.1, rel=1e-6)
    assert m["trades"] == 5
    assert m["win_rate"] == pytest.approx(0.6)
    assert m["profit_factor"] == pytest.approx(3.6)
    assert m["expectancy"] == "26.00"
    assert m["average_win"] == "60.00"
    assert m["average_loss"] == "-25.00"
    assert (m["longest_win_streak"], m["longest_loss_streak"]) == (2, 1)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["days"] == 3


def test_monthly_returns_compare_each_months_last_equity_with_the_previous_months():
    months = monthly_returns(result().equity, Decimal(1000))
    assert [name for name, _ in months] == ["2026-03", "2026-04"]
    assert months[0][1] == pytest.approx(0.045)
    assert months[1][1] == pytest.approx(1210 / 1045 - 1)


def test_the_equity_curve_carries_the_drawdown_from_the_running_peak():
    curve = equity_curve(result())
    assert [row[2] for row in curve] == ["0.00", "0.00", "110.00", "55.00", "0.00", "0.00"]


def test_a_run_without_trades_or_losses_leaves_the_ratios_empty_rather_than_dividing_by_zero():
    flat = BacktestResult(initial_capital=Decimal(1000), cash=Decimal(1000), equity=[(at(30, 3, 10), Decimal(1000))])
    m = metrics(flat)
    assert m["net_pnl"] == "0.00"
    assert m["sharpe"] is None and m["sortino"] is None and m["calmar"] is None
    assert m["win_rate"] is None and m["profit_factor"] is None and m["expectancy"] is None


def test_the_trade_list_is_csv_with_a_header():
    text = trades_csv(result().trades)
    lines = text.splitlines()
    assert lines[0].startswith("leg,instrument_id,direction,product,quantity,entry_ts")
    assert len(lines) == 6
    assert lines[2].split(",")[11] == "-40"
