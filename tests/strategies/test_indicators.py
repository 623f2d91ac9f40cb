"""Each indicator against a value computed here independently: by arithmetic, by the indicator's
recursive definition, or from a published worked example."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from talipp.indicators import EMA as talipp_ema

from strategies.contract import Bar
from strategies.indicators import Ema, OpeningRange, Rsi, Sma, SuperTrend, TimeOfDay, Vwap, source_price
from tests.strategies.harness import ist

DAY = date(2026, 3, 2)


def bars(closes, *, start: str = "09:15", day: date = DAY, highs=None, lows=None, volumes=None) -> list[Bar]:
    first = ist(day, start)
    out = []
    for i, close in enumerate(closes):
        c = Decimal(str(close))
        out.append(
            Bar(
                instrument_id=1,
                ts=first + timedelta(minutes=i),
                open=c,
                high=Decimal(str(highs[i])) if highs else c,
                low=Decimal(str(lows[i])) if lows else c,
                close=c,
                volume=volumes[i] if volumes else 100,
            )
        )
    return out


def feed(indicator, series):
    values = []
    for bar in series:
        indicator.update(bar)
        values.append(indicator.value)
    return values


def test_sma_is_the_arithmetic_mean_of_the_last_period_closes():
    values = feed(Sma(3), bars([10, 11, 12, 13, 20]))
    assert values[:2] == [None, None]
    assert values[2:] == [Decimal(11), Decimal(12), Decimal(15)]  # (10+11+12)/3, (11+12+13)/3, (12+13+20)/3


def test_ema_is_seeded_with_the_simple_average_then_follows_its_recursion():
    closes = [22.27, 22.19, 22.08, 22.17, 22.18, 22.13, 22.23, 22.43, 22.24, 22.29, 22.15, 22.39]
    values = feed(Ema(5), bars(closes))
    assert values[:4] == [None] * 4
    k = 2 / 6
    expected = sum(closes[:5]) / 5  # 22.178
    assert values[4] == pytest.approx(Decimal("22.178"), abs=Decimal("1e-9"))
    for close, value in zip(closes[5:], values[5:], strict=True):
        expected = k * close + (1 - k) * expected
        assert float(value) == pytest.approx(expected, abs=1e-9)
    # By hand: 22.13/3 + 22.178*2/3 = 22.162; then 22.23/3 + 22.162*2/3 = 22.18467.
    assert round(values[5], 3) == Decimal("22.162")
    assert round(values[6], 5) == Decimal("22.18467")


def test_rsi_matches_wilders_worked_example():
    # The 14-period worked example of StockCharts' ChartSchool (Wilder's smoothing); its RSI column rounded.
    closes = [
        44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931,
        46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521,
        45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
    ]  # fmt: skip
    published = [
        "70.53", "66.32", "66.55", "69.41", "66.36", "57.97", "62.93", "63.26", "56.06", "62.38", "54.71",
        "50.42", "39.99", "41.46", "41.87", "45.46", "37.30", "33.08", "37.77",
    ]  # fmt: skip
    values = feed(Rsi(14), bars(closes))
    assert values[:14] == [None] * 14
    assert [round(value, 2) for value in values[14:]] == [Decimal(p) for p in published]


def test_rsi_is_100_when_prices_only_rise():
    assert feed(Rsi(3), bars([1, 2, 3, 4, 5]))[3:] == [Decimal(100), Decimal(100)]


def test_vwap_weighs_typical_prices_by_volume_and_restarts_each_session():
    first = bars([10, 12, 11], highs=[11, 13, 12], lows=[9, 11, 10], volumes=[100, 300, 100])
    # Typical prices (h+l+c)/3: 10, 12, 11.
    values = feed(Vwap(), first)
    assert values[0] == Decimal(10)
    assert values[1] == Decimal("11.5")  # (10*100 + 12*300) / 400
    assert values[2] == Decimal("11.4")  # (1000 + 3600 + 1100) / 500
    next_day = bars([20], day=DAY + timedelta(days=1), highs=[21], lows=[19], volumes=[50])
    assert feed(Vwap(), first + next_day)[-1] == Decimal(20)  # only the new session's bar counts


def test_vwap_is_none_until_volume_trades():
    assert feed(Vwap(), bars([10], volumes=[0])) == [None]


def test_supertrend_follows_its_bands_and_flips_with_the_price():
    # ATR(3) with Wilder's smoothing, multiplier 1; computed by hand bar by bar.
    highs = [11, 12, 13, 14, 17, 12, 10]
    lows = [9, 10, 11, 12, 15, 10, 8]
    closes = [10, 11, 12, 13, 16, 11, 9]
    series = bars(closes, highs=highs, lows=lows)
    st = SuperTrend(3, 1)
    values, trends = [], []
    for bar in series:
        st.update(bar)
        values.append(st.value)
        trends.append(st.trend)
    # Bars 1-3: true ranges 2, 2, 2, so ATR 2 at bar 3, which only gives talipp's placeholder line.
    assert values[:3] == [None, None, None]
    # Bar 4: TR 2, ATR 2, mid 13: basic bands 15 / 11. The line starts on the upper band and the close
    # 13 <= 15 keeps it there: 15, down.
    assert (values[3], trends[3]) == (Decimal(15), "down")
    # Bar 5: TR max(2, |17-13|, |15-13|) = 4, ATR (2*2+4)/3 = 8/3, mid 16: basic upper 18.67 is not below
    # 15 and the previous close 13 is not above it, so the final upper stays 15; basic lower 13.33 > 11
    # becomes the final lower. The close 16 > 15 flips the line to the lower band: 16 - 8/3, up.
    assert values[4] == pytest.approx(Decimal(16) - Decimal(8) / 3, abs=Decimal("1e-9"))
    assert trends[4] == "up"
    # Bar 6: TR max(2, |12-16|, |10-16|) = 6, ATR (8/3*2+6)/3 = 34/9, mid 11: basic upper 11 + 34/9 = 14.78
    # < 15 becomes the final upper; the close 11 < 13.33 flips the line to it: down.
    assert values[5] == pytest.approx(Decimal(11) + Decimal(34) / 9, abs=Decimal("1e-9"))
    assert trends[5] == "down"
    # Bar 7: TR max(2, |10-11|, |8-11|) = 3, ATR (34/9*2+3)/3 = 95/27, mid 9: upper 9 + 95/27 = 12.52 < 14.78.
    assert values[6] == pytest.approx(Decimal(9) + Decimal(95) / 27, abs=Decimal("1e-9"))
    assert trends[6] == "down"


def test_opening_range_is_the_high_and_low_of_the_first_minutes_of_the_session():
    highs = [101, 103, 102, 108, 99]
    lows = [99, 100, 98, 101, 95]
    series = bars([100, 102, 100, 105, 97], highs=highs, lows=lows)
    high, low = OpeningRange(3, "high"), OpeningRange(3, "low")
    assert feed(high, series) == [None, None, Decimal(103), Decimal(103), Decimal(103)]  # 09:15-09:17 only
    assert feed(low, series) == [None, None, Decimal(98), Decimal(98), Decimal(98)]
    tomorrow = bars([50], day=DAY + timedelta(days=1), highs=[51], lows=[49])
    high.update(tomorrow[0])
    assert high.value is None  # a new session, a new range still forming


def test_opening_range_from_five_minute_bars():
    first = ist(DAY, "09:15")
    five = [
        Bar(1, first + timedelta(minutes=5 * i), Decimal(100), Decimal(h), Decimal(lo), Decimal(100), 10, 5)
        for i, (h, lo) in enumerate([(101, 99), (104, 98), (110, 90)])
    ]
    rng = OpeningRange(10, "low")
    assert feed(rng, five) == [None, Decimal(98), Decimal(98)]
    assert rng.high == Decimal(104)


def test_time_of_day_is_the_ist_minute_a_bar_closes():
    clock = TimeOfDay()
    assert clock.value is None
    clock.update(bars([1], start="09:29")[0])
    assert clock.value == Decimal(9 * 60 + 30)


def test_a_long_run_keeps_a_bounded_history_and_the_same_values():
    closes = [100 + (i * 7919 % 23) / 4 for i in range(2600)]
    ema, sma = Ema(10), Sma(10)
    expected = sum(closes[:10]) / 10
    for i, bar in enumerate(bars(closes)):
        ema.update(bar)
        sma.update(bar)
        if i >= 10:
            expected = (2 / 11) * closes[i] + (1 - 2 / 11) * expected
    assert float(ema.value) == pytest.approx(expected, rel=1e-12)
    assert float(sma.value) == pytest.approx(sum(closes[-10:]) / 10, rel=1e-12)
    assert len(sma._inner.input_values) <= 2000  # talipp keeps its inputs: trimmed
    assert not ema._seed  # the EMA keeps only its last value once seeded


PRICES = st.lists(st.integers(min_value=1, max_value=2_000_000).map(lambda n: n * Decimal("0.05")), max_size=80)


@settings(max_examples=300, deadline=None)
@given(prices=PRICES, period=st.integers(min_value=1, max_value=30), source=st.sampled_from(["close", "typical"]))
def test_the_ema_gives_talipps_values_to_the_bit(prices, period, source):
    ours, theirs = Ema(period, source), talipp_ema(period)
    for n, price in enumerate(prices):
        bar = Bar(1, ist(DAY, "09:15") + timedelta(minutes=n), price, price + 1, price - 1, price, 10)
        ours.update(bar)
        theirs.add(float(source_price(bar, source)))
        assert ours.number == theirs[-1]  # None while warming up, then the same float
        assert ours.value == (None if theirs[-1] is None else Decimal(repr(theirs[-1])))


@settings(max_examples=500)
@given(a=st.floats(allow_nan=False, allow_infinity=False), b=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_compare_as_the_decimals_indicators_answer(a, b):
    # A strategy may compare two indicators' floats (Ema.number) instead of their Decimal values.
    da, db = Decimal(repr(a)), Decimal(repr(b))
    assert (a < b, a == b, a > b) == (da < db, da == db, da > db)
