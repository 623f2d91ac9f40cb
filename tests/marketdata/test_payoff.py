"""Payoff of multi-leg option positions at expiry, against values computed by hand."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.payoff import PayoffLeg, curve, curve_today, net_premium, payoff, pnl_at_expiry


def leg(strike, kind, side, qty, premium) -> PayoffLeg:
    return PayoffLeg(D(strike), kind == "CE", 1 if side == "BUY" else -1, qty, D(premium))


def test_a_long_straddle_loses_the_premium_at_the_strike_and_breaks_even_either_side():
    # Buy the 26000 call at 200 and the 26000 put at 180, one NIFTY lot (65) each: premium 380 x 65.
    legs = [leg(26000, "CE", "BUY", 65, 200), leg(26000, "PE", "BUY", 65, 180)]
    result = payoff(legs)
    assert result.net_premium == D(-24700)
    assert result.max_loss == D(-24700)  # at 26000 both expire worthless
    assert result.max_profit is None  # the call's upside is unlimited
    assert result.breakevens == [D("25620.00"), D("26380.00")]
    assert pnl_at_expiry(legs, D(26500)) == (500 - 380) * 65


def test_a_short_straddle_is_the_mirror_image():
    legs = [leg(26000, "CE", "SELL", 65, 200), leg(26000, "PE", "SELL", 65, 180)]
    result = payoff(legs)
    assert result.net_premium == D(24700) and result.max_profit == D(24700) and result.max_loss is None


def test_a_bull_call_spread_has_its_profit_and_loss_capped():
    # Buy 26000 CE at 200, sell 26100 CE at 150, 65 each: debit 50 x 65 = 3,250; max profit (100 - 50) x 65.
    legs = [leg(26000, "CE", "BUY", 65, 200), leg(26100, "CE", "SELL", 65, 150)]
    result = payoff(legs)
    assert result.net_premium == D(-3250)
    assert result.max_loss == D(-3250)
    assert result.max_profit == D(3250)
    assert result.breakevens == [D("26050.00")]


def test_an_iron_condor_profits_between_its_short_strikes():
    # Sell 26100 CE at 120, buy 26200 CE at 80, sell 25900 PE at 110, buy 25800 PE at 70; 30 each.
    # Credit (120 - 80 + 110 - 70) = 80 a unit: 2,400. Wings 100 wide: max loss (100 - 80) x 30 = 600.
    legs = [
        leg(26100, "CE", "SELL", 30, 120),
        leg(26200, "CE", "BUY", 30, 80),
        leg(25900, "PE", "SELL", 30, 110),
        leg(25800, "PE", "BUY", 30, 70),
    ]
    result = payoff(legs)
    assert result.net_premium == D(2400)
    assert result.max_profit == D(2400)
    assert result.max_loss == D(-600)
    assert result.breakevens == [D("25820.00"), D("26180.00")]


def test_a_naked_short_call_has_unlimited_loss_and_one_breakeven():
    result = payoff([leg(26000, "CE", "SELL", 65, 150)])
    assert result.max_loss is None and result.max_profit == D(9750) and result.breakevens == [D("26150.00")]


def test_a_long_put_is_worth_the_strike_less_the_premium_at_zero():
    result = payoff([leg(100, "PE", "BUY", 10, 5)])
    assert result.max_profit == D(950) and result.max_loss == D(-50) and result.breakevens == [D("95.00")]


def test_a_position_without_legs_is_refused():
    with pytest.raises(ValueError):
        payoff([])


def test_the_curve_passes_through_every_strike_inside_its_range():
    legs = [leg(26010, "CE", "BUY", 1, 10)]
    xs = [s for s, _ in curve(legs, D(25900), D(26100), points=5)]
    assert D(26010) in xs and xs == sorted(xs) and xs[0] == D(25900) and xs[-1] == D(26100)


def test_todays_curve_needs_a_model_for_every_leg():
    legs = [leg(100, "CE", "BUY", 1, 5)]
    assert curve_today(legs, [None], [D(100)]) is None
    assert curve_today(legs, [lambda s: 7.5], [D(100)]) == [(D(100), D("2.5"))]


legs_strategy = st.lists(
    st.builds(
        leg,
        st.integers(min_value=1, max_value=400).map(lambda n: n * 50),
        st.sampled_from(["CE", "PE"]),
        st.sampled_from(["BUY", "SELL"]),
        st.integers(min_value=1, max_value=1800),
        st.decimals(min_value=D("0.05"), max_value=D("2000"), places=2),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(legs_strategy)
def test_extremes_and_breakevens_agree_with_the_pnl_itself(legs):
    result = payoff(legs)
    assert result.net_premium == net_premium(legs)
    grid = [D(s) for s in range(0, 20_100, 25)]
    values = [pnl_at_expiry(legs, s) for s in grid]
    if result.max_profit is not None:
        assert max(values) <= result.max_profit
    if result.max_loss is not None:
        assert min(values) >= result.max_loss
    for b in result.breakevens:
        # the P&L is within a rupee per unit of a cent's move of zero at a breakeven (rounded to paise)
        tolerance = sum(x.quantity for x in legs) * D("0.01")
        assert abs(pnl_at_expiry(legs, b)) <= tolerance
