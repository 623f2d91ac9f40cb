"""Each condition against its definition, over prices hypothesis draws (pure functions, no database)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from alerts.conditions import Seen, change_pct, holds, moving_average
from alerts.models import Average, Condition

prices = st.decimals(min_value="0.05", max_value="100000", places=2)
percents = st.decimals(min_value="-99", max_value="500", places=2)


def seen(ltp, previous=None, close=None, high=None, low=None) -> Seen:
    return Seen(
        ltp=ltp,
        high=high if high is not None else ltp,
        low=low if low is not None else ltp,
        previous=previous,
        close=close,
    )


@given(ltp=prices, level=prices)
def test_ltp_above_and_below_hold_exactly_when_the_price_is_at_or_past_the_level(ltp, level):
    assert holds(Condition.LTP_ABOVE, level=level, seen=seen(ltp)) == (ltp >= level)
    assert holds(Condition.LTP_BELOW, level=level, seen=seen(ltp)) == (ltp <= level)


@given(ltp=prices, close=prices, level=percents)
def test_the_change_conditions_compare_the_percentage_from_the_previous_close(ltp, close, level):
    pct = (ltp - close) * 100 / close
    assert holds(Condition.CHANGE_ABOVE, level=level, seen=seen(ltp, close=close)) == (pct >= level)
    assert holds(Condition.CHANGE_BELOW, level=level, seen=seen(ltp, close=close)) == (pct <= level)


def test_a_change_condition_never_holds_without_a_previous_close():
    assert not holds(Condition.CHANGE_ABOVE, level=Decimal("-50"), seen=seen(Decimal(100)))
    assert change_pct(Decimal(100), Decimal(0)) is None


@given(previous=prices, ltp=prices, level=prices)
def test_a_crossing_needs_the_previous_price_on_the_other_side(previous, ltp, level):
    assert holds(Condition.CROSS_UP, level=level, seen=seen(ltp, previous)) == (previous < level <= ltp)
    assert holds(Condition.CROSS_DOWN, level=level, seen=seen(ltp, previous)) == (previous > level >= ltp)
    # The first price seen is no crossing, whatever it is.
    assert not holds(Condition.CROSS_UP, level=level, seen=seen(ltp))
    assert not holds(Condition.CROSS_DOWN, level=level, seen=seen(ltp))


@given(previous=prices, ltp=prices, average=prices)
def test_a_moving_average_crossing_compares_with_the_average(previous, ltp, average):
    assert holds(Condition.MA_CROSS_UP, level=None, seen=seen(ltp, previous), average=average) == (
        previous < average <= ltp
    )
    assert holds(Condition.MA_CROSS_DOWN, level=None, seen=seen(ltp, previous), average=average) == (
        previous > average >= ltp
    )
    assert not holds(Condition.MA_CROSS_UP, level=None, seen=seen(ltp, previous), average=None)


@given(level=prices, ltp=prices, spike=st.decimals(min_value="0.05", max_value="50", places=2))
def test_a_level_touched_between_two_batches_counts(level, ltp, spike):
    """The hand-off conflated a quote that reached the level: the batch's high shows it."""
    high = max(ltp, level + spike)
    assert holds(Condition.LTP_ABOVE, level=level, seen=seen(ltp, high=high))
    assert holds(Condition.CROSS_UP, level=level, seen=seen(ltp, previous=level - spike, high=high)) == (
        level - spike < level
    )


@given(closes=st.lists(prices, min_size=1, max_size=60), minutes=st.integers(min_value=2, max_value=20))
def test_the_sma_is_the_mean_of_the_last_closes(closes, minutes):
    sma = moving_average(Average.SMA, closes, minutes)
    if len(closes) < minutes:
        assert sma is None
    else:
        assert sma == sum(closes[-minutes:]) / minutes


def test_the_ema_weights_recent_closes_by_two_over_n_plus_one():
    closes = [Decimal(v) for v in ("10", "11", "12", "13", "14")]
    # Seeded with the SMA of the first 3 (11), then 13 -> 12, 14 -> 13 with weight 0.5.
    assert moving_average(Average.EMA, closes, 3) == Decimal("13")
    assert moving_average(Average.EMA, closes[:2], 3) is None
