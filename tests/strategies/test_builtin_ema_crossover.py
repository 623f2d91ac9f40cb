"""ema_crossover replayed over a day of INFY 1-minute bars (fixtures/infy_2026-03-02.csv), on 5-minute bars.

How the expected trades were worked out by hand. The fixture's 5-minute closes (each the close of the
bucket's last minute) follow straight lines: 1500 + i for bars i = 0..19 (09:15-10:50), down 2 a bar to
1499 at i = 29, up 3 a bar to 1559 at i = 49, then down 2.5 a bar to 1496.5 at i = 74.

EMA(3) (k = 1/2) and EMA(8) (k = 2/9) are seeded with the simple average of their first closes. On a
straight line of slope s an SMA of n lags the price by s(n - 1)/2, which is also the EMA's steady lag
s(1 - k)/k, so through i = 19 the EMAs are exactly close - 1 and close - 3.5: fast above slow, no cross.
From the peak (1519, i = 19), by the recursion ema = k * close + (1 - k) * previous:
  i=20 (1517): fast 1517.5, slow 1515.83;  i=21 (1515): fast 1516.25, slow 1515.65;
  i=22 (1513): fast 1514.63 < slow 1515.06  -> crosses below at the bar closing 11:10, close 1513.
Down to 1499 then up 3 a bar: at i=31 (1505) fast 1503.25 <= slow 1504.57; at i=32 (1508) fast 1505.63 >
slow 1505.33 -> crosses above at the bar closing 12:00, close 1508.
After the top at i=49 (1559): at i=53 (1549) fast 1551.16 >= slow 1550.75; at i=54 (1546.5) fast 1548.83 <
slow 1549.80 -> crosses below at the bar closing 13:50, close 1546.5.
The exit time 15:15 is reached by the bar 15:10-15:15 (i=71), close 1559 - 2.5 * 22 = 1504.
Each intent is filled at the close of the 1-minute bar that completed the 5-minute bar (that bar's close).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.engine import StrategyRun
from strategies.errors import StrategyInvalid
from strategies.registry import validate_params
from tests.strategies.harness import MemoryInstruments, Trade, load_bars, replay

INSTRUMENTS = MemoryInstruments(symbols={("NSE", "INFY"): 408065})


def params(**overrides) -> dict:
    raw = {
        "instrument": {"exchange": "NSE", "symbol": "INFY"},
        "timeframe": 5,
        "fast": 3,
        "slow": 8,
        "quantity": 10,
        "exit_at": "15:15",
    }
    return raw | overrides


def day():
    return load_bars("infy_2026-03-02.csv", {"INFY": 408065})


def test_long_short_reverses_at_each_crossing_and_is_flat_at_the_exit_time():
    run = StrategyRun(kind="ema_crossover", params=params(mode="long_short"), instruments=INSTRUMENTS)
    assert replay(run, day()) == [
        Trade("11:10", "main", "SELL", 10, Decimal("1513")),  # short on the cross below
        Trade("12:00", "main", "BUY", 10, Decimal("1508")),  # cover...
        Trade("12:00", "main", "BUY", 10, Decimal("1508")),  # ...and go long on the cross above
        Trade("13:50", "main", "SELL", 10, Decimal("1546.5")),  # out of the long...
        Trade("13:50", "main", "SELL", 10, Decimal("1546.5")),  # ...and short on the cross below
        Trade("15:15", "main", "BUY", 10, Decimal("1504")),  # flat at the exit time
    ]
    assert run.positions == {}


def test_long_only_buys_the_cross_above_and_sells_the_cross_below():
    run = StrategyRun(kind="ema_crossover", params=params(), instruments=INSTRUMENTS)
    assert replay(run, day()) == [
        Trade("12:00", "main", "BUY", 10, Decimal("1508")),
        Trade("13:50", "main", "SELL", 10, Decimal("1546.5")),
    ]


def test_the_intents_of_a_replay_carry_the_five_minute_bars_keys():
    run = StrategyRun(kind="ema_crossover", params=params(), instruments=INSTRUMENTS)
    keys = []
    for bar in day():
        keys += [intent.key for intent in run.on_bar(bar).intents]
    assert keys[0] == "bar:2026-03-02T06:25:00+00:00:main:0"  # the 11:55-12:00 IST bar


def test_fast_must_be_shorter_than_slow():
    with pytest.raises(StrategyInvalid) as caught:
        validate_params("ema_crossover", params(fast=21, slow=9))
    assert caught.value.extra["field"] == "fast"
