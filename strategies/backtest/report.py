"""The report of a backtest: metrics, the equity curve with its drawdown, monthly returns, the trade list.

Money is Decimal (rupees); ratios are floats. With E the equity (cash plus open positions at the last
close, one point a minute), C the initial capital and the trades the closed round trips:

- ``net_pnl`` = E_last - C; ``total_return`` = net_pnl / C.
- ``cagr`` = (E_last / C) ^ (365 / days) - 1, ``days`` the calendar days from the first bar's IST date to
  the last's, both counted (None with no bars, or when E_last <= 0).
- Daily returns r_d = E_d / E_(d-1) - 1 on each IST day's last equity, E_0 = C.
  ``sharpe`` = mean(r) / stdev(r) x sqrt(252) (sample standard deviation, risk-free rate 0; None under
  two days or with no variation). ``sortino`` = mean(r) / sqrt(sum(min(r, 0)^2) / n) x sqrt(252)
  (None without a losing day).
- Drawdown at a point = running peak of E (C included) - E. ``max_drawdown`` is its largest amount,
  ``max_drawdown_pct`` the largest (peak - E) / peak, ``max_drawdown_days`` the longest time, in days,
  from a peak until E is back at it (or until the last point, if it never is).
- ``calmar`` = cagr / max_drawdown_pct (None with no drawdown).
- Over closed trades by net P&L (after their charges): ``win_rate`` = winners / trades (a trade that
  made more than 0); ``profit_factor`` = sum of wins / |sum of losses| (None with no loss);
  ``expectancy`` = mean net P&L; ``average_win`` and ``average_loss`` the means of each; the longest
  runs of consecutive winners and losers.
- ``exposure`` = the share of minutes with any open position; ``charges`` = all charges paid.
- Monthly returns: each IST month's last equity over the previous month's (over C for the first).

A year of minutes is about 94,000 equity points, so each walk over them does as little per point as it
can: the IST day of a point is worked out once a day (from the day's bounds), a drawdown's depth and
length once it ends (from its trough and last point), and the curve formats only the points it keeps.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from marketdata.hours import IST
from strategies.backtest.engine import BacktestResult, RoundTrip

TRADING_DAYS = 252
ZERO = Decimal(0)
TRADE_COLUMNS = (
    "leg",
    "instrument_id",
    "direction",
    "product",
    "quantity",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "gross_pnl",
    "charges",
    "net_pnl",
    "exit_reason",
)


@dataclass(frozen=True, slots=True)
class Drawdown:
    amount: Decimal
    pct: float
    days: float


def drawdown_series(equity: Sequence[tuple[datetime, Decimal]], initial: Decimal) -> list[Decimal]:
    """The drawdown amount at each point: the running peak (from ``initial``) minus the equity."""
    peak = initial
    out = []
    for _, value in equity:
        peak = max(peak, value)
        out.append(peak - value)
    return out


def max_drawdown(equity: Sequence[tuple[datetime, Decimal]], initial: Decimal) -> Drawdown:
    """The largest drawdown amount, the largest as a share of its peak, and the longest time under a peak.

    Each drawdown is measured when it ends (back at its peak, or at the last point): its depth from its
    trough, which is where both its amount and its share of the (fixed) peak are largest, and its length
    to the latest point under the peak or the point back at it."""
    if not equity:
        return Drawdown(ZERO, 0.0, 0.0)
    peak, peak_ts = initial, equity[0][0]
    amount, pct, longest = ZERO, 0.0, 0.0
    trough: Decimal | None = None  # the lowest equity under the current peak, while under it
    latest = peak_ts  # the latest time under the current peak

    def ended(until: datetime) -> None:
        nonlocal amount, pct, longest
        assert trough is not None
        amount = max(amount, peak - trough)
        if peak > 0:
            pct = max(pct, float((peak - trough) / peak))
        longest = max(longest, (until - peak_ts).total_seconds() / 86400)

    for ts, value in equity:
        if value >= peak:
            if trough is not None:  # back at the peak: that drawdown lasted until now
                ended(max(latest, ts))
                trough = None
            peak, peak_ts = value, ts
        elif trough is None:
            trough, latest = value, ts
        else:
            if value < trough:
                trough = value
            if ts > latest:
                latest = ts
    if trough is not None:
        ended(latest)
    return Drawdown(amount, pct, longest)


def _ist_days(equity: Sequence[tuple[datetime, Decimal]]) -> Iterator[tuple[date, Decimal]]:
    """Each point's IST date and equity; the date is worked out again only when a point leaves the
    IST day of the one before."""
    start = end = None
    day = date.min
    for ts, value in equity:
        if start is None or end is None or not start <= ts < end:
            day = ts.astimezone(IST).date()
            start = datetime.combine(day, time(0), IST).astimezone(ts.tzinfo)
            end = datetime.combine(day + timedelta(days=1), time(0), IST).astimezone(ts.tzinfo)
        yield day, value


def daily_equity(equity: Sequence[tuple[datetime, Decimal]]) -> list[tuple[Any, Decimal]]:
    """Each IST day's last equity, oldest first."""
    days: dict[Any, Decimal] = {}
    for day, value in _ist_days(equity):
        days[day] = value
    return list(days.items())


def daily_returns(equity: Sequence[tuple[datetime, Decimal]], initial: Decimal) -> list[float]:
    previous = initial
    out = []
    for _, value in daily_equity(equity):
        out.append(float(value / previous - 1) if previous else 0.0)
        previous = value
    return out


def sharpe(returns: Sequence[float]) -> float | None:
    if len(returns) < 2:
        return None
    deviation = statistics.stdev(returns)
    return statistics.fmean(returns) / deviation * math.sqrt(TRADING_DAYS) if deviation else None


def sortino(returns: Sequence[float]) -> float | None:
    if not returns:
        return None
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return statistics.fmean(returns) / downside * math.sqrt(TRADING_DAYS) if downside else None


def cagr(equity: Sequence[tuple[datetime, Decimal]], initial: Decimal) -> float | None:
    if not equity or initial <= 0 or equity[-1][1] <= 0:
        return None
    days = (equity[-1][0].astimezone(IST).date() - equity[0][0].astimezone(IST).date()).days + 1
    return float(equity[-1][1] / initial) ** (365 / days) - 1


def monthly_returns(equity: Sequence[tuple[datetime, Decimal]], initial: Decimal) -> list[tuple[str, float]]:
    months: dict[str, Decimal] = {}
    names: dict[date, str] = {}
    for day, value in _ist_days(equity):
        name = names.get(day)
        if name is None:
            name = names[day] = day.strftime("%Y-%m")
        months[name] = value
    previous = initial
    out = []
    for month, value in months.items():
        out.append((month, float(value / previous - 1) if previous else 0.0))
        previous = value
    return out


def streaks(trades: Sequence[RoundTrip]) -> tuple[int, int]:
    """The longest runs of consecutive winning and losing trades."""
    best = worst = run_win = run_loss = 0
    for trade in trades:
        if trade.net_pnl > 0:
            run_win, run_loss = run_win + 1, 0
        else:
            run_win, run_loss = 0, run_loss + 1
        best, worst = max(best, run_win), max(worst, run_loss)
    return best, worst


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def metrics(result: BacktestResult) -> dict[str, Any]:
    """The metrics of a result as a JSON object (money as strings of rupees to the paisa, ratios as floats)."""
    initial, equity, trades = result.initial_capital, result.equity, result.trades
    final = result.final_equity
    returns = daily_returns(equity, initial)
    dd = max_drawdown(equity, initial)
    growth = cagr(equity, initial)
    wins = [t.net_pnl for t in trades if t.net_pnl > 0]
    losses = [t.net_pnl for t in trades if t.net_pnl <= 0]
    lost = -sum(losses, ZERO)
    longest_win, longest_loss = streaks(trades)
    return {
        "initial_capital": _money(initial),
        "final_equity": _money(final),
        "net_pnl": _money(final - initial),
        "total_return": _ratio(float((final - initial) / initial)),
        "cagr": _ratio(growth),
        "max_drawdown": _money(dd.amount),
        "max_drawdown_pct": _ratio(dd.pct),
        "max_drawdown_days": round(dd.days, 4),
        "sharpe": _ratio(sharpe(returns)),
        "sortino": _ratio(sortino(returns)),
        "calmar": _ratio(growth / dd.pct if growth is not None and dd.pct else None),
        "trades": len(trades),
        "win_rate": _ratio(len(wins) / len(trades) if trades else None),
        "profit_factor": _ratio(float(sum(wins, ZERO) / lost) if lost else None),
        "expectancy": _money(sum((t.net_pnl for t in trades), ZERO) / len(trades)) if trades else None,
        "average_win": _money(sum(wins, ZERO) / len(wins)) if wins else None,
        "average_loss": _money(sum(losses, ZERO) / len(losses)) if losses else None,
        "longest_win_streak": longest_win,
        "longest_loss_streak": longest_loss,
        "exposure": _ratio(result.exposed_minutes / len(equity) if equity else 0.0),
        "charges": _money(result.charges),
        "bars": result.bars,
        "days": len(returns),
    }


def equity_curve(result: BacktestResult, most: int | None = None) -> list[list[str]]:
    """``[iso time, equity, drawdown]`` per minute, money to the paisa; with ``most``, at most that many
    points, evenly spaced, the last always kept (each drawdown still from the running peak of every
    minute)."""
    equity = result.equity
    keep = _spaced(len(equity), most)
    out = []
    peak = result.initial_capital
    for n, (ts, value) in enumerate(equity):
        peak = max(peak, value)
        if keep is None or n in keep:
            out.append([ts.isoformat(), _money(value), _money(peak - value)])
    return out


def _spaced(count: int, most: int | None) -> set[int] | None:
    """The indices of at most ``most`` of ``count`` points, evenly spaced, the last always kept; None for all."""
    if most is None or count <= most:
        return None
    step = count / most
    return {int(i * step) for i in range(most - 1)} | {count - 1}


def trades_csv(trades: Sequence[RoundTrip]) -> str:
    """The trade list as CSV text with a header row (``TRADE_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TRADE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for trade in trades:
        writer.writerow(trade.as_json())
    return out.getvalue()


def metrics_table(values: dict[str, Any]) -> str:
    """The metrics as an aligned two-column text table."""
    width = max(len(name) for name in values)
    return "\n".join(f"{name.ljust(width)}  {'-' if value is None else value}" for name, value in values.items())
