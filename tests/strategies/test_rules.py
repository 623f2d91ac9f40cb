"""The rule strategy: its JSON is validated field by field, and its entries and exits follow the rules."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies.contract import Bar
from strategies.engine import StrategyRun
from strategies.errors import StrategyInvalid
from strategies.registry import validate_params
from tests.strategies.harness import MemoryInstruments, Trade, ist, replay

DAY = date(2026, 3, 2)
INSTRUMENTS = MemoryInstruments(symbols={("NSE", "ACME"): 11}, lots={11: 25})


def rule(**overrides) -> dict:
    base = {
        "instrument": {"exchange": "NSE", "symbol": "ACME"},
        "quantity": 10,
        "indicators": {"fast": {"type": "sma", "period": 2}, "slow": {"type": "sma", "period": 4}},
        "entry": {"all": [{"left": {"indicator": "fast"}, "op": "crosses_above", "right": {"indicator": "slow"}}]},
    }
    base.update(overrides)
    return base


def invalid_field(raw) -> str:
    with pytest.raises(StrategyInvalid) as caught:
        validate_params("rule", raw)
    return caught.value.extra["field"]


def test_a_complete_rule_validates():
    params = validate_params(
        "rule",
        rule(
            timeframe=5,
            side="short",
            exit={"any": [{"left": {"price": "close"}, "op": ">", "right": {"indicator": "slow"}}]},
            stop_loss={"percent": "1"},
            target={"points": 20},
            trailing_stop={"percent": "0.5"},
            no_entry_after="14:30",
            exit_at="15:15",
        ),
    )
    assert params.timeframe == 5 and params.side == "short" and params.stop_loss.percent == Decimal(1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"entry": {"all": [{"left": {"indicator": "fast"}, "op": ">", "right": {"indicator": "nope"}}]}},
            "entry.all.0.right.indicator",
        ),
        ({"entry": {"all": [{"left": {"indicator": "fast"}, "op": "=", "right": {"number": 1}}]}}, "entry.all.0.op"),
        ({"entry": {"all": [{"left": {"indicator": "fast"}, "op": ">"}]}}, "entry.all.0.right"),
        ({"entry": {"all": [{"left": {"number": 1}, "op": ">", "right": {"number": 2}}]}}, "entry.all.0.right"),
        (
            {"entry": {"any": [{"left": {"price": "close"}, "op": ">", "right": {"time": "10:00"}}]}},
            "entry.any.0.right",
        ),
        (
            {"entry": {"all": [{"left": {"price": "close", "number": 1}, "op": ">", "right": {"number": 2}}]}},
            "entry.all.0.left",
        ),
        (
            {"entry": {"all": [{"left": {"price": "close"}, "op": ">", "right": {"number": "1e999"}}]}},
            "entry.all.0.right.number",
        ),
        ({"entry": {"all": []}}, "entry.all"),
        ({"entry": {"all": [{"left": {"price": "close"}, "op": ">", "right": {"number": 1}}], "any": []}}, "entry.any"),
        (
            {"entry": {"left": {"price": "close"}, "op": ">", "right": {"number": 1}, "any": [{"all": [{}]}]}},
            "entry.any.0.all.0",
        ),
        (
            {
                "entry": {
                    "all": [{"left": {"price": "close"}, "op": ">", "right": {"number": 1}}],
                    "any": [{"left": {"price": "close"}, "op": ">", "right": {"number": 1}}],
                }
            },
            "entry",
        ),
        ({"indicators": {"fast": {"type": "ema"}}}, "indicators.fast.period"),
        ({"indicators": {"fast": {"type": "vwap", "period": 3}}}, "indicators.fast.period"),
        ({"indicators": {"fast": {"type": "macd", "period": 3}}}, "indicators.fast.type"),
        ({"indicators": {"Fast!": {"type": "sma", "period": 3}}}, "indicators.Fast!.[key]"),
        ({"indicators": {"or": {"type": "opening_range_high", "minutes": 7}}, "timeframe": 5}, "indicators.or.minutes"),
        ({"quantity": None}, "quantity"),
        ({"lots": 2}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"side": "sideways"}, "side"),
        ({"timeframe": 7}, "timeframe"),
        ({"stop_loss": {}}, "stop_loss.percent"),
        ({"stop_loss": {"percent": 1, "points": 2}}, "stop_loss.percent"),
        ({"target": {"percent": "NaN"}}, "target.percent"),
        ({"no_entry_after": "25:00"}, "no_entry_after"),
        ({"no_entry_after": "15:20", "exit_at": "15:00"}, "no_entry_after"),
        ({"exit_at": "15:15+05:30"}, "exit_at"),
        ({"instrument": {"exchange": "NSE", "symbol": "acme\x00"}}, "instrument.symbol"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_error_names_its_field(change, field):
    assert invalid_field(rule(**change)) == field


def test_conditions_nested_too_deep_are_refused_without_recursing():
    deep: dict = {"left": {"price": "close"}, "op": ">", "right": {"number": 1}}
    for _ in range(5000):
        deep = {"all": [deep]}
    assert invalid_field(rule(entry=deep)) == "entry"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["ema", "close", "fast", "crosses_above", ">", "10:30", "1e9999", "NSE", "ACME"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["instrument", "exchange", "symbol", "quantity", "lots", "indicators", "fast", "type", "period",
             "entry", "exit", "all", "any", "left", "op", "right", "indicator", "price", "number", "time",
             "stop_loss", "percent", "points", "timeframe", "side", "exit_at", "x"]
        ) | st.text(max_size=5),
        children,
        max_size=5,
    ),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=JSON | st.builds(lambda e, x: rule(entry=e, exit=x), JSON, JSON) | st.builds(lambda i: rule(indicators=i), JSON)
)
def test_any_json_either_validates_or_is_refused_naming_a_field(raw):
    try:
        params = validate_params("rule", raw)
    except StrategyInvalid as error:
        assert isinstance(error.extra["field"], str) and error.extra["field"]
        json.dumps(error.as_dict())
    else:
        assert params.entry is not None


def bars(closes: list[str], *, start: str = "09:15") -> list[Bar]:
    """Flat 1-minute bars (open = high = low = close) from ``start``."""
    first = ist(DAY, start)
    return [
        Bar(11, first + timedelta(minutes=i), Decimal(c), Decimal(c), Decimal(c), Decimal(c), 100)
        for i, c in enumerate(closes)
    ]


def run_of(raw: dict) -> StrategyRun:
    return StrategyRun(kind="rule", params=raw, instruments=INSTRUMENTS)


def test_it_enters_on_a_crossing_and_exits_on_the_exit_condition():
    # SMA(2) vs SMA(4): through 09:18 every close is 100, so both are 100 (fast <= slow). The 09:19 bar
    # (close 104, closing at 09:20) makes fast (100+104)/2 = 102 > slow (100*3+104)/4 = 101: a crossing,
    # bought at 104. Exit when close < slow: 09:20 close 104 vs slow 102, 09:21 close 105 vs 103.25, no;
    # 09:22 close 99 vs (104+104+105+99)/4 = 103: out at 99 (closing 09:23).
    closes = ["100", "100", "100", "100", "104", "104", "105", "99", "98", "97"]
    raw = rule(exit={"left": {"price": "close"}, "op": "<", "right": {"indicator": "slow"}})
    trades = replay(run_of(raw), bars(closes))
    assert trades == [
        Trade("09:20", "main", "BUY", 10, Decimal(104)),
        Trade("09:23", "main", "SELL", 10, Decimal(99)),
    ]


def test_a_short_rule_in_lots_sells_and_its_stop_loss_buys_back():
    closes = ["100", "100", "100", "100", "104", "105", "106", "107"]
    raw = rule(quantity=None, lots=2, side="short", stop_loss={"percent": "2.5"})
    # Sold 50 (2 lots of 25) at 104 (09:19 bar); the stop is 2.5% of 104 = 2.6 above: 106.6. 106 is not
    # beyond it; 107 (09:22 bar) is, so the position is bought back at 107.
    assert replay(run_of(raw), bars(closes)) == [
        Trade("09:20", "main", "SELL", 50, Decimal(104)),
        Trade("09:23", "main", "BUY", 50, Decimal(107)),
    ]


def test_the_target_and_the_trailing_stop_close_a_long():
    closes = ["100", "100", "100", "100", "104", "110", "112", "111", "109"]
    target = rule(target={"points": "8"})
    # Entry at 104; the target 112 is reached by the 09:21 close of 112.
    assert replay(run_of(target), bars(closes))[1] == Trade("09:22", "main", "SELL", 10, Decimal(112))
    trailing = rule(trailing_stop={"points": "3"})
    # Best close 112; 111 is 1 below it, 109 is 3 below it: out at 09:23's close.
    assert replay(run_of(trailing), bars(closes))[1] == Trade("09:24", "main", "SELL", 10, Decimal(109))


def test_no_new_entries_after_the_cutoff_and_out_at_the_exit_time():
    closes = ["100", "100", "100", "100", "104", "105", "106"]
    late = rule(no_entry_after="09:20")
    assert replay(run_of(late), bars(closes)) == []  # the crossing bar closes at 09:20, too late
    timed = rule(exit_at="09:22")
    assert replay(run_of(timed), bars(closes)) == [
        Trade("09:20", "main", "BUY", 10, Decimal(104)),
        Trade("09:22", "main", "SELL", 10, Decimal(106)),  # the 09:21 bar closes at 09:22
    ]


def test_time_conditions_compare_the_bars_closing_time():
    closes = ["100", "101", "102", "103"]
    raw = rule(
        indicators={"clock": {"type": "time_of_day"}},
        entry={"left": {"indicator": "clock"}, "op": ">=", "right": {"time": "09:17"}},
    )
    assert replay(run_of(raw), bars(closes)) == [Trade("09:17", "main", "BUY", 10, Decimal(101))]


def test_an_order_that_never_fills_is_given_up_after_a_few_bars():
    run = run_of(rule(entry={"left": {"price": "close"}, "op": ">", "right": {"number": 100}}))
    emitted = [len(run.on_bar(bar).intents) for bar in bars(["101"] * 5)]
    assert emitted == [1, 0, 0, 1, 0]
    assert run.snapshot()["state"]["pending"] == {"what": "entry", "bars": 1}


def test_an_unknown_symbol_crashes_the_strategy_with_a_clear_message():
    from strategies.engine import StrategyCrashed

    run = StrategyRun(kind="rule", params=rule(), instruments=MemoryInstruments())
    with pytest.raises(StrategyCrashed, match="NSE:ACME is not in the symbol master"):
        run.subscriptions(ist(DAY, "09:15"))


def test_the_documented_examples_validate():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "strategies.md").read_text()
    examples = [block.split("```", 1)[0] for block in text.split("```json\n")[1:]]
    assert len(examples) == 2
    for example in examples:
        validate_params("rule", json.loads(example))


def test_a_five_minute_rule_fed_one_minute_bars_decides_on_each_five_minute_close():
    # 5-minute closes: 101 (09:15-09:19), then 103 (09:20-09:24). The close crosses above 102 on the second
    # bar only (the 1-minute 103 at 09:21 is inside it): bought at 103 when the bar closes, 09:25.
    closes = ["100", "101", "102", "101", "101", "101", "103", "104", "103", "103"]
    raw = rule(
        timeframe=5, indicators={}, entry={"left": {"price": "close"}, "op": "crosses_above", "right": {"number": 102}}
    )
    assert replay(run_of(raw), bars(closes)) == [Trade("09:25", "main", "BUY", 10, Decimal(103))]
