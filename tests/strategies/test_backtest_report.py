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

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.hours import IST
from strategies.backtest.engine import BacktestResult, RoundTrip
from strategies.backtest.report import (
    ZERO,
    daily_equity,
    equity_curve,
    max_drawdown,
    metrics,
    monthly_returns,
    trades_csv,
)


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


# --- the walks over every minute, against the plain definitions they replaced


def plain_max_drawdown(equity, initial):
    """Every point measured: the definition in the module's docstring, point by point."""
    if not equity:
        return (ZERO, 0.0, 0.0)
    peak, peak_ts = initial, equity[0][0]
    amount, pct, longest, under = ZERO, 0.0, 0.0, False
    for ts, value in equity:
        if value >= peak:
            if under:
                longest = max(longest, (ts - peak_ts).total_seconds() / 86400)
            peak, peak_ts, under = value, ts, False
            continue
        under = True
        amount = max(amount, peak - value)
        if peak > 0:
            pct = max(pct, float((peak - value) / peak))
        longest = max(longest, (ts - peak_ts).total_seconds() / 86400)
    return (amount, pct, longest)


def plain_daily_equity(equity):
    days = {}
    for ts, value in equity:
        days[ts.astimezone(IST).date()] = value
    return list(days.items())


def plain_monthly(equity, initial):
    months = {}
    for ts, value in equity:
        months[ts.astimezone(IST).strftime("%Y-%m")] = value
    previous, out = initial, []
    for month, value in months.items():
        out.append((month, float(value / previous - 1) if previous else 0.0))
        previous = value
    return out


def plain_curve(result, most):
    peak, rows = result.initial_capital, []
    for ts, value in result.equity:
        peak = max(peak, value)
        rows.append(
            [ts.isoformat(), str(value.quantize(Decimal("0.01"))), str((peak - value).quantize(Decimal("0.01")))]
        )
    if most is None or len(rows) <= most:
        return rows
    step = len(rows) / most
    return [*(rows[int(i * step)] for i in range(most - 1)), rows[-1]]


EQUITY = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=70 * 24 * 60),  # minutes over ten weeks from 00:00 IST on 30 Mar
        st.integers(min_value=-500, max_value=3000).map(lambda n: Decimal(n) / 2),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(
    points=EQUITY,
    ordered=st.booleans(),
    zone=st.sampled_from([UTC, IST]),
    initial=st.sampled_from([Decimal(1000), Decimal(0), Decimal("-5")]),
    most=st.sampled_from([None, 1, 2, 7, 40, 1000]),
)
def test_the_walks_over_the_equity_give_what_the_plain_definitions_give(points, ordered, zone, initial, most):
    start = datetime(2026, 3, 30, tzinfo=IST)
    equity = [((start + timedelta(minutes=m)).astimezone(zone), value) for m, value in points]
    if ordered:
        equity.sort(key=lambda point: point[0])
    dd = max_drawdown(equity, initial)
    plain = plain_max_drawdown(equity, initial)
    assert (str(dd.amount), dd.pct, dd.days) == (str(plain[0]), plain[1], plain[2])
    assert daily_equity(equity) == plain_daily_equity(equity)
    assert monthly_returns(equity, initial) == plain_monthly(equity, initial)
    run = BacktestResult(initial_capital=initial, cash=initial, equity=equity)
    assert equity_curve(run, most) == plain_curve(run, most)
