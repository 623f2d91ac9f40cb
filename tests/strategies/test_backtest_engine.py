"""The backtest engine (strategies/backtest/engine.py): the strategy's own code over replayed bars, filled by
the paper exchange's rules on bars, with lot sizes, freeze slicing, MIS square-off, charges and crashes.

The EMA-crossover acceptance case reuses the hand-worked fixture of test_builtin_ema_crossover.py (INFY on
2 Mar 2026, EMA 3/8 on 5-minute bars, long-short, flat at 15:15): crosses at the bars closing 11:10
(close 1513), 12:00 (1508) and 13:50 (1546.5), flat at 15:15 (1504). The fixture's every minute opens at the
previous minute's close, so next-open fills are at those prices one minute on. Round trips of 10 shares:
short 1513 -> 1508 (+50), long 1508 -> 1546.5 (+385), short 1546.5 -> 1504 (+425), gross 860.
Charges (default schedule, intraday): sell 10 @ 1513 = 9.69 (tests/brokers/test_charges.py), buy 10 @ 1508 = 6.34
(brokerage 4.52, exchange 0.45, SEBI 0.02, stamp 0.45, GST 0.90), sell @ 1546.5 = 9.91, buy @ 1504 = 6.33;
six orders: 9.69 + 2 x 6.34 + 2 x 9.91 + 6.33 = 48.52, so a net P&L of 811.48.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from brokers.charges import ChargeSchedule
from marketdata.hours import IST
from strategies.backtest.engine import Backtest, BacktestSettings, InstrumentSpec, run_backtest
from strategies.backtest.report import metrics
from strategies.contract import Bar, Context, Params, Strategy
from strategies.engine import StrategyCrashed
from strategies.registry import register, registered
from tests.strategies.harness import load_bars

INFY = InstrumentSpec(408065, "NSE", "INFY")
NO_CHARGES = BacktestSettings(charges=ChargeSchedule.none())


def ema_params(**overrides) -> dict:
    raw = {
        "instrument": {"exchange": "NSE", "symbol": "INFY"},
        "timeframe": 5,
        "fast": 3,
        "slow": 8,
        "quantity": 10,
        "exit_at": "15:15",
        "mode": "long_short",
    }
    return raw | overrides


def day():
    return load_bars("infy_2026-03-02.csv", {"INFY": 408065})


def fills_of(result):
    return [(f.ts.astimezone(IST).strftime("%H:%M"), f.side, f.quantity, f.price) for f in result.fills]


def test_the_ema_crossover_backtest_gives_the_hand_checked_trades_and_metrics():
    result = run_backtest(kind="ema_crossover", params=ema_params(), instruments=[INFY], bars=day())
    assert result.error == ""
    assert fills_of(result) == [
        ("11:10", "SELL", 10, Decimal("1513")),
        ("12:00", "BUY", 10, Decimal("1508")),
        ("12:00", "BUY", 10, Decimal("1508")),
        ("13:50", "SELL", 10, Decimal("1546.5")),
        ("13:50", "SELL", 10, Decimal("1546.5")),
        ("15:15", "BUY", 10, Decimal("1504")),
    ]
    assert [(t.direction, t.entry_price, t.exit_price, t.gross_pnl) for t in result.trades] == [
        ("short", Decimal("1513"), Decimal("1508"), Decimal(50)),
        ("long", Decimal("1508"), Decimal("1546.5"), Decimal(385)),
        ("short", Decimal("1546.5"), Decimal("1504"), Decimal(425)),
    ]
    m = metrics(result)
    assert m["charges"] == "48.52"
    assert m["net_pnl"] == "811.48"
    assert m["trades"] == 3 and m["win_rate"] == 1.0
    assert m["expectancy"] == "270.49"  # 811.48 / 3


def test_close_fills_are_at_the_signal_bars_close_as_the_strategy_tests_replay_them():
    settings = BacktestSettings(fill_mode="close", charges=ChargeSchedule.none())
    result = run_backtest(kind="ema_crossover", params=ema_params(), instruments=[INFY], bars=day(), settings=settings)
    assert fills_of(result)[0] == ("11:10", "SELL", 10, Decimal("1513"))  # the bar closing 11:10
    assert metrics(result)["net_pnl"] == "860.00"


def test_market_fills_pay_the_slippage_against_the_order():
    settings = BacktestSettings(slippage_bps=10, charges=ChargeSchedule.none())
    result = run_backtest(kind="ema_crossover", params=ema_params(), instruments=[INFY], bars=day(), settings=settings)
    # 1513 - 10 bps = 1511.487 -> 1511.45 (down to a tick) for the sell; 1508 + 1.508 -> 1509.55 for the buy.
    assert [f.price for f in result.fills[:2]] == [Decimal("1511.45"), Decimal("1509.55")]


# --- strategies made for these tests


class OneParams(Params):
    quantity: int = Field(default=10, ge=1)
    order_type: str = "MARKET"
    price: Decimal | None = None
    trigger: Decimal | None = None
    product: str = "MIS"
    crash_at: int = 0


class BuyOnce(Strategy):
    """Buys ``quantity`` on its first bar with the given order type; crashes on bar ``crash_at`` if set."""

    name = "test_bt_buy_once"
    Params = OneParams

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        ctx.state["bars"] = ctx.state.get("bars", 0) + 1
        if self.params.crash_at and ctx.state["bars"] == self.params.crash_at:
            raise RuntimeError("boom in on_bar")
        if ctx.state["bars"] == 1:
            p = self.params
            ctx.buy(
                "long",
                bar.instrument_id,
                p.quantity,
                order_type=p.order_type,
                price=p.price,
                trigger_price=p.trigger,
                product=p.product,
            )


if BuyOnce.name not in registered():
    register(BuyOnce)


def minute_bars(prices: list[tuple[str, str, str, str]], *, start: str = "09:15", instrument_id: int = 7) -> list[Bar]:
    hour, minute = (int(x) for x in start.split(":"))
    first = datetime(2026, 3, 2, hour, minute, tzinfo=IST)
    return [
        Bar(instrument_id, first + timedelta(minutes=i), Decimal(o), Decimal(h), Decimal(low), Decimal(c), 100)
        for i, (o, h, low, c) in enumerate(prices)
    ]


STOCK = InstrumentSpec(7, "NSE", "TEST")


def test_a_limit_buy_waits_until_a_bar_trades_down_to_it():
    bars = minute_bars([("100", "101", "99", "100"), ("100", "100", "98.5", "99"), ("99", "99", "97", "98")])
    result = run_backtest(
        kind="test_bt_buy_once",
        params={"order_type": "LIMIT", "price": "98"},
        instruments=[STOCK],
        bars=bars,
        settings=NO_CHARGES,
    )
    assert fills_of(result) == [("09:17", "BUY", 10, Decimal("98"))]


def test_a_stop_market_buy_fills_when_the_bars_high_touches_the_trigger():
    bars = minute_bars([("100", "101", "99", "100"), ("100", "101.5", "99.5", "101"), ("101", "103", "101", "102")])
    result = run_backtest(
        kind="test_bt_buy_once",
        params={"order_type": "SL-M", "trigger": "102"},
        instruments=[STOCK],
        bars=bars,
        settings=NO_CHARGES,
    )
    assert fills_of(result) == [("09:17", "BUY", 10, Decimal("102"))]


def test_a_quantity_not_in_whole_lots_is_refused_and_one_above_the_freeze_limit_is_sliced():
    lots = InstrumentSpec(7, "NFO", "TESTFUT", instrument_type="FUT", lot_size=75, freeze_quantity=1800)
    bars = minute_bars([("100", "101", "99", "100"), ("100", "101", "99", "100")])
    refused = run_backtest(
        kind="test_bt_buy_once", params={"quantity": 100}, instruments=[lots], bars=bars, settings=NO_CHARGES
    )
    assert refused.fills == [] and refused.rejections[0]["code"] == "quantity_not_multiple_of_lot_size"
    sliced = run_backtest(
        kind="test_bt_buy_once", params={"quantity": 3750}, instruments=[lots], bars=bars, settings=NO_CHARGES
    )
    assert [f.quantity for f in sliced.fills] == [1800, 1800, 150]
    assert len({f.order_id for f in sliced.fills}) == 3


def test_mis_positions_are_squared_off_at_1515_ist_and_delivery_positions_are_not():
    bars = minute_bars([("100", "101", "99", "100")] * 4, start="15:13")
    mis = run_backtest(kind="test_bt_buy_once", params={}, instruments=[STOCK], bars=bars, settings=NO_CHARGES)
    assert fills_of(mis) == [("15:14", "BUY", 10, Decimal("100")), ("15:15", "SELL", 10, Decimal("100"))]
    assert mis.trades[0].exit_reason == "MIS square-off"
    cnc = run_backtest(
        kind="test_bt_buy_once", params={"product": "CNC"}, instruments=[STOCK], bars=bars, settings=NO_CHARGES
    )
    assert fills_of(cnc) == [("15:14", "BUY", 10, Decimal("100"))]


def test_an_mis_entry_after_the_square_off_time_is_refused():
    bars = minute_bars([("100", "101", "99", "100")] * 3, start="15:20")
    result = run_backtest(kind="test_bt_buy_once", params={}, instruments=[STOCK], bars=bars, settings=NO_CHARGES)
    assert result.fills == [] and result.rejections[0]["code"] == "mis_entry_after_square_off"


def test_a_strategy_that_raises_stops_the_run_with_its_traceback_in_the_result():
    bars = minute_bars([("100", "101", "99", "100")] * 5)
    result = run_backtest(
        kind="test_bt_buy_once", params={"crash_at": 3}, instruments=[STOCK], bars=bars, settings=NO_CHARGES
    )
    assert "RuntimeError: boom in on_bar" in result.error
    assert "Traceback" in result.error
    assert result.bars == 3  # the third bar was the last
    assert len(result.fills) == 1  # what happened before it stands


def test_cash_and_equity_follow_the_fills_and_the_closes():
    bars = minute_bars([("100", "101", "99", "100"), ("100", "106", "99", "105"), ("105", "106", "104", "104")])
    result = run_backtest(
        kind="test_bt_buy_once", params={"product": "CNC"}, instruments=[STOCK], bars=bars, settings=NO_CHARGES
    )
    capital = Decimal(1_000_000)
    assert result.cash == capital - 1000  # 10 bought at the 09:16 open, 100
    assert [value for _, value in result.equity] == [capital, capital + 50, capital + 40]
    assert result.open_trades[0].quantity == 10


class DailyParams(Params):
    product: str = "MIS"
    late: str = "15:20"  # IST, when it tries another entry


class Daily(Strategy):
    """Buys 10 on each IST day's first bar, and tries to buy 10 more at ``late`` (refused after the MIS
    square-off); counts its bars in ctx.state."""

    name = "test_bt_daily"
    Params = DailyParams

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        local = bar.ts.astimezone(IST)
        day = local.date().isoformat()
        if ctx.state.get("day") != day:
            ctx.state["day"] = day
            ctx.buy("long", bar.instrument_id, 10, product=self.params.product)
        if local.strftime("%H:%M") == self.params.late:
            ctx.buy("long", bar.instrument_id, 10, product=self.params.product)


if Daily.name not in registered():
    register(Daily)


def days_of_bars(days: int, *, zone=IST) -> list[Bar]:
    """09:15-15:29 IST on ``days`` consecutive days from 2 Mar 2026, every bar at 100, stamped in ``zone``."""
    bars = []
    for n in range(days):
        first = datetime(2026, 3, 2 + n, 9, 15, tzinfo=IST)
        for minute in range(375):
            ts = (first + timedelta(minutes=minute)).astimezone(zone)
            bars.append(Bar(7, ts, Decimal(100), Decimal(100), Decimal(100), Decimal(100), 100))
    return bars


def test_each_days_mis_position_is_squared_off_at_that_days_1515_and_entries_open_again_the_next_morning():
    result = run_backtest(
        kind="test_bt_daily", params={}, instruments=[STOCK], bars=days_of_bars(3), settings=NO_CHARGES
    )
    assert [(f.ts.astimezone(IST).strftime("%d %H:%M"), f.side) for f in result.fills] == [
        ("02 09:16", "BUY"),
        ("02 15:15", "SELL"),
        ("03 09:16", "BUY"),
        ("03 15:15", "SELL"),
        ("04 09:16", "BUY"),
        ("04 15:15", "SELL"),
    ]
    assert [r["code"] for r in result.rejections] == ["mis_entry_after_square_off"] * 3
    assert [t.exit_reason for t in result.trades] == ["MIS square-off"] * 3


def test_bars_stamped_in_utc_or_in_ist_replay_alike():
    from datetime import UTC

    runs = [
        run_backtest(kind="test_bt_daily", params={}, instruments=[STOCK], bars=days_of_bars(2, zone=zone),
                     settings=NO_CHARGES)
        for zone in (UTC, IST)
    ]  # fmt: skip
    utc, ist = ([(f.ts, f.side, f.price) for f in run.fills] for run in runs)
    assert utc == ist and len(utc) == 4
    assert runs[0].equity == runs[1].equity
    assert [r["code"] for r in runs[0].rejections] == [r["code"] for r in runs[1].rejections] != []


class Mixed(Strategy):
    """Orders of every kind from the bars' prices (deterministic): market buys and sells in MIS and CNC,
    limits a tick away, closes; a log line now and then; crashes on a close of 13."""

    name = "test_bt_mixed"
    Params = Params

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        n = int(bar.close)
        ctx.state["seen"] = ctx.state.get("seen", 0) + 1
        if n == 13:
            raise RuntimeError("thirteen")
        leg = f"leg{bar.instrument_id}"
        if n % 5 == 0:
            ctx.buy(leg, bar.instrument_id, 5, product="MIS")
        elif n % 5 == 1:
            ctx.sell(leg, bar.instrument_id, 5, product="CNC")
        elif n % 5 == 2:
            ctx.buy(leg, bar.instrument_id, 5, order_type="LIMIT", price=bar.close - 1, product="MIS")
        elif n % 5 == 3:
            ctx.close(leg, product="MIS")
        if n % 7 == 0:
            ctx.note(f"{bar.instrument_id} at {bar.close}")


if Mixed.name not in registered():
    register(Mixed)


class ReferenceBacktest(Backtest):
    """The replay as first written: minute groups, every step run for every bar, the square-off time read
    from each bar's IST wall clock."""

    def _after_square_off(self, ts: datetime) -> bool:
        limit = self.settings.mis_square_off
        return limit is not None and ts.astimezone(IST).time() >= limit

    def replay(self, bars, *, progress=None):
        ordered = sorted(bars, key=lambda bar: (bar.ts, bar.instrument_id))
        total = len(ordered) or 1
        done = reported = 0
        try:
            if ordered:
                self._handle(self.run.start(ordered[0].ts).intents, ordered[0], at_close=True)
            for minute, group in itertools.groupby(ordered, key=lambda bar: bar.ts):
                for bar in group:
                    done += 1
                    if bar.instrument_id not in self.symbols.by_id:
                        continue
                    self.result.bars += 1
                    self._match_pending(bar)
                    self._square_off(bar)
                    self._last_close[bar.instrument_id] = bar.close
                    step = self.run.on_bar(bar)
                    self.result.log.extend(step.log)
                    self._handle(step.intents, bar, at_close=self.settings.fill_mode == "close")
                self._mark(minute)
                if progress is not None and done - reported >= 1000:
                    reported = done
                    progress(done / total)
        except StrategyCrashed as crash:
            self.result.error = crash.traceback
            self.result.error_event = crash.event
        self.result.open_trades = list(self._open_trades.values())
        return self.result


def _outcome(result):
    return (
        [
            (f.order_id, f.ts, f.instrument_id, f.leg, f.side, f.quantity, f.price, f.product, f.charges)
            for f in result.fills
        ],
        [t.as_json() for t in result.trades],
        [t.as_json() for t in result.open_trades],
        result.equity,
        result.rejections,
        result.log,
        result.bars,
        result.exposed_minutes,
        result.cash,
        result.error.splitlines()[-1:] if result.error else [],
        result.error_event,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3 * 24 * 60 - 1),  # minute of three days from 00:00 IST
            st.sampled_from([7, 8, 99]),  # 99 is not in the backtest
            st.integers(min_value=2, max_value=40),
        ),
        max_size=120,
    ),
    fill_mode=st.sampled_from(["next_open", "close"]),
    square_off=st.sampled_from([None, "15:15", "10:00"]),
    zone=st.sampled_from(["UTC", "IST"]),
)
def test_the_replay_loop_gives_what_the_plain_loop_over_every_step_gives(rows, fill_mode, square_off, zone):
    from datetime import UTC

    start = datetime(2026, 3, 2, tzinfo=IST)
    tz = UTC if zone == "UTC" else IST
    bars = [
        Bar(
            iid,
            (start + timedelta(minutes=m)).astimezone(tz),
            Decimal(c),
            Decimal(c + 1),
            Decimal(c - 1),
            Decimal(c),
            10,
        )
        for m, iid, c in rows
    ]
    specs = [STOCK, InstrumentSpec(8, "NSE", "OTHER")]
    config = BacktestSettings(fill_mode=fill_mode, mis_square_off=square_off)
    progress_ours, progress_theirs = [], []
    ours = Backtest(kind="test_bt_mixed", params={}, instruments=specs, settings=config).replay(
        bars, progress=progress_ours.append
    )
    theirs = ReferenceBacktest(kind="test_bt_mixed", params={}, instruments=specs, settings=config).replay(
        bars, progress=progress_theirs.append
    )
    assert _outcome(ours) == _outcome(theirs)
    assert progress_ours == progress_theirs
