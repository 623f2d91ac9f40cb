"""short_straddle replayed over a day of NIFTY 50 and its 22500 straddle expiring 3 March
(fixtures/nifty_straddle_2026-03-02.csv, 1-minute bars; one lot is 65).

How the expected trades were worked out by hand, reading the fixture:
- Entry: the NIFTY 50 bar 09:19 closes at 09:20 (the entry time) at 22512.35; the nearest listed strike is
  22500 (12.35 away, against 37.65 for 22550), of the nearest expiry, 3 March (10 March is later). Both
  legs are sold at their 09:19 closes: the call at 118.40, the put at 104.60 (premium 223.00).
- Leg stop 25%: the call's stop is 118.40 * 1.25 = 148.00. Its closes fall to 96 at 11:00, rise to 128 at
  11:30 and 147.40 at 12:10, then 148.35 at 12:11: bought back at 148.35 (the bar closes at 12:12). The
  put's stop, 130.75, is never reached (its highest close after the entry is 118 at 11:00).
- The put is bought back at the exit time 15:15, at the 15:14 close, 41.35.
- MTM stop of 1000 rupees (no leg stop): MTM = (223.00 - call - put) * 65, checked at each bar with each
  leg's latest close. Within a minute the bars come call, put, index, so at the call's bar the put's close
  is the previous minute's. 12:47: call 183.35 with put 54.70 (12:46) gives (223 - 238.05) * 65 = -978.25,
  then with put 54.25, -955.50: not yet. 12:48: call 184.35 with put 54.25 gives (223 - 238.60) * 65 =
  -1014.00 <= -1000: both legs bought back at their 12:48 closes, 184.35 and 53.75.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from strategies.contract import OptionRow
from strategies.engine import StrategyRun
from strategies.errors import StrategyInvalid
from strategies.registry import validate_params
from tests.strategies.harness import MemoryInstruments, Trade, ist, load_bars, replay

INDEX, CE, PE = 256265, 12001, 12002


def chain() -> list[OptionRow]:
    rows = []
    next_id = 13000
    for expiry in (date(2026, 3, 3), date(2026, 3, 10)):
        for strike in range(22400, 22650, 50):
            for option_type in ("CE", "PE"):
                if (expiry, strike) == (date(2026, 3, 3), 22500):
                    instrument_id = CE if option_type == "CE" else PE
                else:
                    next_id += 1
                    instrument_id = next_id
                rows.append(OptionRow(instrument_id, Decimal(strike), option_type, expiry, 65))
    return rows


INSTRUMENTS = MemoryInstruments(symbols={("NSE", "NIFTY 50"): INDEX}, lots={CE: 65, PE: 65}, chains={"NIFTY": chain()})


def params(**overrides) -> dict:
    return {"underlying": "NIFTY", "index": {"exchange": "NSE", "symbol": "NIFTY 50"}, "lots": 1} | overrides


def day():
    return load_bars(
        "nifty_straddle_2026-03-02.csv", {"NIFTY 50": INDEX, "NIFTY2630322500CE": CE, "NIFTY2630322500PE": PE}
    )


def test_it_sells_the_atm_straddle_stops_a_leg_and_exits_the_other_at_the_exit_time():
    run = StrategyRun(
        kind="short_straddle", params=params(leg_stop_percent="25", mtm_stop="5000"), instruments=INSTRUMENTS
    )
    assert replay(run, day()) == [
        Trade("09:20", "ce", "SELL", 65, Decimal("118.40")),
        Trade("09:20", "pe", "SELL", 65, Decimal("104.60")),
        Trade("12:12", "ce", "BUY", 65, Decimal("148.35")),  # the call's 25% stop, 148.00
        Trade("15:15", "pe", "BUY", 65, Decimal("41.35")),  # the exit time
    ]
    assert run.positions == {}
    assert run.legs == {"ce": CE, "pe": PE}
    # Realised: call (118.40 - 148.35) * 65 = -1946.75, put (104.60 - 41.35) * 65 = 4111.25.
    assert run.state["cash"] == {"ce": "-1946.75", "pe": "4111.25"}


def test_the_mtm_stop_buys_back_both_legs():
    run = StrategyRun(kind="short_straddle", params=params(mtm_stop="1000"), instruments=INSTRUMENTS)
    assert replay(run, day()) == [
        Trade("09:20", "ce", "SELL", 65, Decimal("118.40")),
        Trade("09:20", "pe", "SELL", 65, Decimal("104.60")),
        Trade("12:49", "ce", "BUY", 65, Decimal("184.35")),
        Trade("12:49", "pe", "BUY", 65, Decimal("53.75")),
    ]


def test_it_subscribes_to_the_index_then_to_the_legs_it_sold():
    run = StrategyRun(kind="short_straddle", params=params(), instruments=INSTRUMENTS)
    assert run.subscriptions(ist(date(2026, 3, 2), "09:15")) == [INDEX]
    replay(run, [bar for bar in day() if bar.ts <= ist(date(2026, 3, 2), "09:19")])
    assert run.subscriptions(ist(date(2026, 3, 2), "09:20")) == [CE, PE, INDEX]


def test_a_quantity_that_is_not_a_whole_number_of_lots_crashes_at_entry():
    from strategies.engine import StrategyCrashed

    run = StrategyRun(kind="short_straddle", params=params(lots=None, quantity=50), instruments=INSTRUMENTS)
    with pytest.raises(StrategyCrashed, match="not a multiple of the lot size 65"):
        replay(run, day())


def test_the_entry_must_come_before_the_exit():
    with pytest.raises(StrategyInvalid) as caught:
        validate_params("short_straddle", params(entry_at="15:20"))
    assert caught.value.extra["field"] == "entry_at"


def test_a_run_restarted_mid_day_from_its_snapshot_and_warmed_up_trades_as_if_never_stopped():
    bars = day()
    cut = ist(date(2026, 3, 2), "12:00")
    first = StrategyRun(kind="short_straddle", params=params(leg_stop_percent="25"), instruments=INSTRUMENTS)
    before = replay(first, [bar for bar in bars if bar.ts < cut])
    restarted = StrategyRun(
        kind="short_straddle", params=params(leg_stop_percent="25"), instruments=INSTRUMENTS, snapshot=first.snapshot()
    )
    restarted.warm_up([bar for bar in bars if bar.ts < cut])
    after = replay(restarted, [bar for bar in bars if bar.ts >= cut])
    assert [(t.time, t.leg, t.side) for t in before + after] == [
        ("09:20", "ce", "SELL"),
        ("09:20", "pe", "SELL"),
        ("12:12", "ce", "BUY"),
        ("15:15", "pe", "BUY"),
    ]
