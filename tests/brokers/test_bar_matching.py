"""The simulated exchanges' bar rules (brokers/matching.py), shared by backtests, on top of the paper
exchange's quote rules: market fills with slippage inside the protected limit, limits crossed by a bar,
SL triggers touched by a bar's range, freeze-quantity slices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.matching import (
    bar_limit_price,
    bar_market_fill,
    bar_trigger_price,
    match,
    match_at,
    protected_limit,
    slices,
)
from marketdata.quotes import Quote

TICK = D("0.05")


def test_a_market_buy_fills_at_the_price_moved_by_the_slippage_rounded_up_to_a_tick():
    # 1000 + 10 bps = 1001.00
    fill = bar_market_fill(side="BUY", quantity=5, price=D(1000), instrument_type="EQ", tick=TICK, slippage_bps=10)
    assert fill.fills == [(5, D("1001.00"))]


def test_a_market_sell_with_slippage_beyond_the_protected_limit_fills_at_the_limit():
    limit = protected_limit(side="SELL", instrument_type="EQ", ltp=D(1000), tick=TICK)  # 0.5 % below: 995
    fill = bar_market_fill(side="SELL", quantity=5, price=D(1000), instrument_type="EQ", tick=TICK, slippage_bps=100)
    assert fill.fills == [(5, limit)]
    assert limit == D("995.00")


def test_a_buy_limit_fills_at_the_limit_when_the_low_reaches_it_and_at_the_open_when_the_bar_gaps_through():
    assert bar_limit_price(side="BUY", limit=D(100), open=D(102), high=D(103), low=D(100)) == D(100)
    assert bar_limit_price(side="BUY", limit=D(100), open=D(98), high=D(99), low=D(97)) == D(98)
    assert bar_limit_price(side="BUY", limit=D(100), open=D(102), high=D(103), low=D("100.05")) is None


def test_a_sell_limit_fills_when_the_high_reaches_it():
    assert bar_limit_price(side="SELL", limit=D(105), open=D(102), high=D(105), low=D(101)) == D(105)
    assert bar_limit_price(side="SELL", limit=D(105), open=D(106), high=D(107), low=D(104)) == D(106)
    assert bar_limit_price(side="SELL", limit=D(105), open=D(102), high=D(104), low=D(101)) is None


def test_a_sell_stop_triggers_when_the_low_touches_it_at_the_trigger_or_at_a_gapped_open():
    assert bar_trigger_price(side="SELL", trigger=D(95), open=D(100), high=D(101), low=D(95)) == D(95)
    assert bar_trigger_price(side="SELL", trigger=D(95), open=D(93), high=D(94), low=D(92)) == D(93)
    assert bar_trigger_price(side="SELL", trigger=D(95), open=D(100), high=D(101), low=D("95.05")) is None


def test_a_buy_stop_triggers_when_the_high_touches_it():
    assert bar_trigger_price(side="BUY", trigger=D(105), open=D(100), high=D(105), low=D(99)) == D(105)
    assert bar_trigger_price(side="BUY", trigger=D(105), open=D(100), high=D("104.95"), low=D(99)) is None


def test_a_quantity_above_the_freeze_limit_is_sliced_into_whole_lots():
    assert slices(100, None) == [100]
    assert slices(1800, 1800, 75) == [1800]
    assert slices(4000, 1800, 75) == [1800, 1800, 400]
    assert slices(4000, 1790, 75) == [1725, 1725, 550]  # the freeze limit rounded down to 23 lots


PRICES = st.integers(min_value=-20, max_value=4_000_000).map(lambda n: n * TICK)


@settings(max_examples=400)
@given(
    side=st.sampled_from(["BUY", "SELL"]),
    remaining=st.integers(min_value=-2, max_value=10_000),
    price=PRICES,
    limit=PRICES,
    bps=st.integers(min_value=0, max_value=1000),
)
def test_a_bars_price_is_met_as_match_meets_a_quote_without_depth(side, remaining, price, limit, bps):
    quote = Quote(instrument_id=1, ltp=price, ts=datetime(2026, 3, 2, tzinfo=UTC))
    expected = match(side=side, remaining=remaining, limit=limit, quote=quote, tick=TICK, slippage_bps=bps)
    assert match_at(side=side, remaining=remaining, price=price, limit=limit, tick=TICK, slippage_bps=bps) == expected
