"""opening_range_breakout replayed over two days of SBIN 1-minute bars (fixtures/sbin_2026-03-02_03.csv).

How the expected trades were worked out by hand, reading the fixture:
- 2 March: the first 15 minutes (the bars 09:15-09:29) reach their high 783.40 at 09:21 and their low
  778.10 at 09:26. Every close from 09:29 to 10:00 stays inside (at most 783.00, at 10:00); the 10:01 bar
  closes at 783.85 > 783.40: buy at 783.85 (the bar closes at 10:02), stop 778.10. No later close falls
  below 778.10 (the day's lows after 10:01 are above 782), so the position is closed by the bar that
  closes at the exit time 15:15, the 15:14 bar: sell at its close, 788.85.
- 3 March: a new range, high 786.00 (09:18) and low 781.20 (09:22). Closes stay inside until the 10:40
  bar's 781.00 < 781.20 (the 10:39 close is 781.60): sell at 781.00, stop 786.00. The price recovers; the
  11:51 close 785.70 is still below the stop and the 11:52 close 786.30 is above it: buy back at 786.30.
  That was the day's one trade, so the later closes above the range high open nothing.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from strategies.engine import StrategyRun
from strategies.errors import StrategyInvalid
from strategies.registry import validate_params
from tests.strategies.harness import MemoryInstruments, Trade, load_bars, replay

INSTRUMENTS = MemoryInstruments(symbols={("NSE", "SBIN"): 779521})


def params(**overrides) -> dict:
    return {"instrument": {"exchange": "NSE", "symbol": "SBIN"}, "range_minutes": 15, "quantity": 100} | overrides


def days():
    return load_bars("sbin_2026-03-02_03.csv", {"SBIN": 779521})


def test_it_trades_each_days_breakout_with_the_stop_at_the_other_side_and_out_at_the_exit_time():
    run = StrategyRun(kind="opening_range_breakout", params=params(), instruments=INSTRUMENTS)
    assert replay(run, days()) == [
        Trade("10:02", "main", "BUY", 100, Decimal("783.85")),  # 2 March: above the range high 783.40
        Trade("15:15", "main", "SELL", 100, Decimal("788.85")),  # the exit time
        Trade("10:41", "main", "SELL", 100, Decimal("781.00")),  # 3 March: below the range low 781.20
        Trade("11:53", "main", "BUY", 100, Decimal("786.30")),  # stopped above the range high 786.00
    ]
    assert run.positions == {}


def test_a_long_only_run_ignores_the_breakdown_and_takes_the_later_breakout():
    # 3 March: the 10:40 breakdown is not for a long-only run; the 11:52 close 786.30 is the first above
    # the range high 786.00, so it buys there. Later closes (787 down to about 784) never fall below the
    # range low 781.20: out at the 15:14 bar's close, 785.05.
    run = StrategyRun(kind="opening_range_breakout", params=params(direction="long"), instruments=INSTRUMENTS)
    assert replay(run, days()) == [
        Trade("10:02", "main", "BUY", 100, Decimal("783.85")),
        Trade("15:15", "main", "SELL", 100, Decimal("788.85")),
        Trade("11:53", "main", "BUY", 100, Decimal("786.30")),
        Trade("15:15", "main", "SELL", 100, Decimal("785.05")),
    ]


def test_no_entry_after_the_cut_off():
    # The 3 March breakdown closes at 10:41, after a 10:30 cut-off; the 2 March breakout (10:02) is before it.
    run = StrategyRun(kind="opening_range_breakout", params=params(no_entry_after="10:30"), instruments=INSTRUMENTS)
    assert [(t.time, t.side) for t in replay(run, days())] == [("10:02", "BUY"), ("15:15", "SELL")]


def test_the_cut_off_must_come_before_the_exit_time():
    with pytest.raises(StrategyInvalid) as caught:
        validate_params("opening_range_breakout", params(no_entry_after="15:20"))
    assert caught.value.extra["field"] == "no_entry_after"
