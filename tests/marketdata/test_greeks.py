"""The Greeks of marketdata/greeks.py against published values and a reference library.

Published values: John C. Hull, "Options, Futures, and Other Derivatives" (the Black-Scholes-Merton
examples, the Greek letters chapter's running example and the Black's-model futures option example).
Reference library: vollib (the successor of py_vollib; its ``black`` and ``black_scholes`` analytical
Greeks), with the same conventions: theta per calendar day, vega and rho per 1 point.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black import black as vollib_black
from vollib.black.greeks import analytical as vollib_black_greeks
from vollib.black_scholes import black_scholes as vollib_black_scholes
from vollib.black_scholes.greeks import analytical as vollib_bs_greeks

from marketdata.greeks import black76_greeks, black_scholes_greeks, dividend_adjusted_spot, spot_of_future
from marketdata.options import black_scholes


# --- Hull's published examples --------------------------------------------------------------------
def test_hull_greek_letters_example_a_call_on_a_non_dividend_stock():
    """Hull's running example of the Greek letters: S=49, K=50, r=5%, vol=20%, T=20 weeks (0.3846 y):
    price 2.40, delta 0.522, gamma 0.066, theta -4.31 a year, vega 12.1 per unit of vol, rho 8.91."""
    g = black_scholes_greeks(spot=49, strike=50, years=0.3846, vol=0.2, call=True, rate=0.05)
    assert round(g.price, 2) == 2.40
    assert round(g.delta, 3) == 0.522
    assert round(g.gamma, 3) == 0.066
    assert round(g.theta * 365, 2) == -4.31  # per year in the book; per calendar day here
    assert round(g.vega * 100, 1) == 12.1  # per unit of volatility in the book; per point here
    assert round(g.rho * 100, 2) == 8.91


def test_hull_black_scholes_example_prices_a_call_and_a_put():
    """Hull's Black-Scholes-Merton example: S=42, K=40, r=10%, vol=20%, T=0.5: call 4.76, put 0.81."""
    assert round(black_scholes_greeks(spot=42, strike=40, years=0.5, vol=0.2, call=True, rate=0.1).price, 2) == 4.76
    assert round(black_scholes_greeks(spot=42, strike=40, years=0.5, vol=0.2, call=False, rate=0.1).price, 2) == 0.81


def test_hull_known_dividends_example_prices_on_the_dividend_adjusted_spot():
    """Hull's call on a stock with dividends of 0.50 in two and five months: S=40, K=40, r=9%, vol=30%,
    T=6 months; the dividends' present value is 0.9741 and the call is worth 3.67."""
    spot = dividend_adjusted_spot(spot=40, dividends=[(2 / 12, 0.5), (5 / 12, 0.5)], rate=0.09)
    assert 40 - spot == pytest.approx(0.9741, abs=1e-4)
    assert round(black_scholes_greeks(spot=spot, strike=40, years=0.5, vol=0.3, call=True, rate=0.09).price, 2) == 3.67


def test_hull_blacks_model_example_prices_a_put_on_a_future():
    """Hull's European put futures option (Black's model): F=20, K=20, r=9%, vol=25%, T=4 months: 1.12."""
    assert round(black76_greeks(future=20, strike=20, years=4 / 12, vol=0.25, call=False, rate=0.09).price, 2) == 1.12


def test_a_dividend_already_paid_does_not_reduce_the_spot():
    assert dividend_adjusted_spot(spot=100, dividends=[(-0.1, 5.0)], rate=0.05) == 100


def test_at_expiry_an_option_is_its_intrinsic_value_with_delta_one_or_nothing():
    itm = black76_greeks(future=110, strike=100, years=0, vol=0.2, call=True, rate=0.05)
    otm_put = black_scholes_greeks(spot=110, strike=100, years=0, vol=0.2, call=False, rate=0.05)
    assert (itm.price, itm.delta, itm.gamma, itm.theta, itm.vega) == (10, 1, 0, 0, 0)
    assert (otm_put.price, otm_put.delta) == (0, 0)


# --- the reference library, over the space the chain shows -----------------------------------------
strikes = st.floats(min_value=0.5, max_value=2.0)  # moneyness K/S: deep in to deep out of the money
vols = st.floats(min_value=0.03, max_value=1.5)
expiries = st.floats(min_value=1 / 365, max_value=2.0)  # a day to two years
rates = st.floats(min_value=0.0, max_value=0.12)
underlyings = st.floats(min_value=50.0, max_value=60_000.0)


def _close(ours: float, reference: float, scale: float) -> bool:
    return math.isclose(ours, reference, rel_tol=1e-7, abs_tol=1e-9 * scale)


@settings(max_examples=300, deadline=None)
@given(underlyings, strikes, expiries, vols, rates, st.booleans())
def test_black_scholes_greeks_match_vollib(spot, moneyness, years, vol, rate, call):
    strike, flag = spot * moneyness, "c" if call else "p"
    g = black_scholes_greeks(spot=spot, strike=strike, years=years, vol=vol, call=call, rate=rate)
    assert _close(g.price, vollib_black_scholes(flag, spot, strike, years, rate, vol), spot)
    assert _close(g.delta, vollib_bs_greeks.delta(flag, spot, strike, years, rate, vol), 1)
    assert _close(g.gamma, vollib_bs_greeks.gamma(flag, spot, strike, years, rate, vol), 1)
    assert _close(g.theta, vollib_bs_greeks.theta(flag, spot, strike, years, rate, vol), spot)
    assert _close(g.vega, vollib_bs_greeks.vega(flag, spot, strike, years, rate, vol), spot)
    assert _close(g.rho, vollib_bs_greeks.rho(flag, spot, strike, years, rate, vol), spot)


@settings(max_examples=300, deadline=None)
@given(underlyings, strikes, expiries, vols, rates, st.booleans())
def test_black76_greeks_match_vollib(future, moneyness, years, vol, rate, call):
    strike, flag = future * moneyness, "c" if call else "p"
    g = black76_greeks(future=future, strike=strike, years=years, vol=vol, call=call, rate=rate)
    assert _close(g.price, vollib_black(flag, future, strike, years, rate, vol), future)
    assert _close(g.delta, vollib_black_greeks.delta(flag, future, strike, years, rate, vol), 1)
    assert _close(g.gamma, vollib_black_greeks.gamma(flag, future, strike, years, rate, vol), 1)
    assert _close(g.theta, vollib_black_greeks.theta(flag, future, strike, years, rate, vol), future)
    assert _close(g.vega, vollib_black_greeks.vega(flag, future, strike, years, rate, vol), future)
    assert _close(g.rho, vollib_black_greeks.rho(flag, future, strike, years, rate, vol), future)


@settings(max_examples=200, deadline=None)
@given(underlyings, strikes, expiries, vols, rates, st.booleans())
def test_black76_on_a_future_is_black_scholes_on_its_discounted_price(future, moneyness, years, vol, rate, call):
    """Why the chain's IV solver (written for Black-Scholes) also solves Black-76: ``spot_of_future``."""
    strike = future * moneyness
    on_future = black76_greeks(future=future, strike=strike, years=years, vol=vol, call=call, rate=rate).price
    spot = spot_of_future(future=future, years=years, rate=rate)
    assert math.isclose(
        on_future,
        black_scholes(spot=spot, strike=strike, years=years, vol=vol, call=call, rate=rate),
        rel_tol=1e-9,
        abs_tol=1e-9 * future,
    )


@pytest.mark.parametrize("call", [True, False])
def test_put_call_parity_holds_for_black76_deltas(call):
    c = black76_greeks(future=26000, strike=26100, years=0.05, vol=0.13, call=True, rate=0.065)
    p = black76_greeks(future=26000, strike=26100, years=0.05, vol=0.13, call=False, rate=0.065)
    assert c.delta - p.delta == pytest.approx(math.exp(-0.065 * 0.05))
    assert c.gamma == pytest.approx(p.gamma) and c.vega == pytest.approx(p.vega)
