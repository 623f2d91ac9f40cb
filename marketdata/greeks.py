"""Option Greeks: pure functions of floats, no database.

Two models, one formula. The generalised Black-Scholes formula with a cost of carry ``b`` prices a
European option on an asset whose forward is ``S·e^(bT)``:

    d1 = (ln(S/K) + (b + vol²/2)·T) / (vol·√T),   d2 = d1 - vol·√T
    call = S·e^((b-r)T)·N(d1) - K·e^(-rT)·N(d2)
    put  = K·e^(-rT)·N(-d2) - S·e^((b-r)T)·N(-d1)

- Black-76 (``black76_greeks``) is ``b = 0`` with ``S`` the futures price F: index options, and any
  option whose underlying has a future of the same expiry, are priced on that future.
- Black-Scholes (``black_scholes_greeks``) is ``b = r`` with ``S`` the spot less the present value of
  the dividends paid before expiry (``dividend_adjusted_spot``): stock options without such a future.

The Greeks, with ``n`` the standard normal density and ``c = e^((b-r)T)``:

    delta = c·N(d1) (call), c·(N(d1) - 1) (put)           per 1 rupee of the underlying (F for Black-76)
    gamma = c·n(d1) / (S·vol·√T)                           per 1 rupee, per 1 rupee
    vega  = S·c·n(d1)·√T / 100                             per 1 point of volatility (20% → 21%)
    theta = [-S·c·n(d1)·vol/(2√T) ∓ (b-r)·S·c·N(±d1) ∓ r·K·e^(-rT)·N(±d2)] / 365
            (upper signs for a call)                        per calendar day
    rho   = ±K·T·e^(-rT)·N(±d2) / 100 for b = r;  -T·price / 100 for Black-76 (F held fixed)
                                                            per 1 point of the rate

Time ``T`` is in calendar years to 15:30 IST on the expiry day (``marketdata.options.years_to_expiry``);
rates and volatilities are annual fractions (0.065, 0.2). These are the conventions of most Indian
terminals and of the vollib reference library the tests check against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAYS_PER_YEAR = 365.0
POINT = 0.01  # vega and rho are quoted per 1 point (1%) of volatility and of the rate


@dataclass(frozen=True, slots=True)
class Greeks:
    """One option's price and sensitivities, in the conventions of this module's docstring."""

    price: float
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per 1 point of volatility
    rho: float  # per 1 point of the rate


def _pdf(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _expired(underlying: float, strike: float, call: bool) -> Greeks:
    """At or past expiry: the intrinsic value, delta 1/0 (-1/0 for a put), every other Greek 0."""
    intrinsic = max(underlying - strike, 0.0) if call else max(strike - underlying, 0.0)
    delta = (1.0 if underlying > strike else 0.0) if call else (-1.0 if underlying < strike else 0.0)
    return Greeks(intrinsic, delta, 0.0, 0.0, 0.0, 0.0)


def _generalised(
    *, s: float, strike: float, years: float, rate: float, on_future: bool, vol: float, call: bool
) -> Greeks:
    if years <= 0 or vol <= 0:
        return _expired(s, strike, call)
    carry = 0.0 if on_future else rate
    root = math.sqrt(years)
    d1 = (math.log(s / strike) + (carry + vol * vol / 2) * years) / (vol * root)
    d2 = d1 - vol * root
    held = math.exp((carry - rate) * years)  # e^((b-r)T): 1 for Black-Scholes, the discount for Black-76
    discount = math.exp(-rate * years)
    sign = 1.0 if call else -1.0
    n_d1, n_d2 = _cdf(sign * d1), _cdf(sign * d2)
    price = sign * (s * held * n_d1 - strike * discount * n_d2)
    density = _pdf(d1)
    theta_year = (
        -s * held * density * vol / (2 * root)
        - sign * (carry - rate) * s * held * n_d1
        - sign * rate * strike * discount * n_d2
    )
    rho = -years * price if on_future else sign * strike * years * discount * n_d2
    return Greeks(
        price=price,
        delta=sign * held * n_d1,
        gamma=held * density / (s * vol * root),
        theta=theta_year / DAYS_PER_YEAR,
        vega=s * held * density * root * POINT,
        rho=rho * POINT,
    )


def black76_greeks(*, future: float, strike: float, years: float, vol: float, call: bool, rate: float) -> Greeks:
    """Return the Black-76 price and Greeks of a European option on a future priced ``future``.

    Delta and gamma are with respect to the futures price. At or past expiry (``years`` ≤ 0), or at
    zero volatility, the intrinsic value with delta ±1 or 0 and no other Greek."""
    return _generalised(s=future, strike=strike, years=years, rate=rate, on_future=True, vol=vol, call=call)


def black_scholes_greeks(*, spot: float, strike: float, years: float, vol: float, call: bool, rate: float) -> Greeks:
    """Return the Black-Scholes price and Greeks of a European option on a spot priced ``spot``, which
    for a stock paying dividends before expiry is ``dividend_adjusted_spot(...)``. Expired as in
    ``black76_greeks``."""
    return _generalised(s=spot, strike=strike, years=years, rate=rate, on_future=False, vol=vol, call=call)


def dividend_adjusted_spot(*, spot: float, dividends: list[tuple[float, float]], rate: float) -> float:
    """Return the spot less the present value of the dividends paid before expiry, each given as
    (years from now to its ex-date, amount per share): ``S - Σ Dᵢ·e^(-r·tᵢ)`` (Hull, "European options
    on stocks paying known dividends"). Dividends already past (tᵢ < 0) are ignored."""
    return spot - sum(amount * math.exp(-rate * t) for t, amount in dividends if t >= 0)


def spot_of_future(*, future: float, years: float, rate: float) -> float:
    """Return the spot whose Black-Scholes prices equal Black-76 prices on ``future``: ``F·e^(-rT)``.
    An implied-volatility solver written for Black-Scholes thus solves Black-76 too."""
    return future * math.exp(-rate * max(years, 0.0))
