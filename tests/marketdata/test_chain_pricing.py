"""How the option chain values its options: Black-76 on a future, or Black-Scholes on a stock's spot."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.models import Instrument
from marketdata.options import chain_pricing
from marketdata.quotes import Quote

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def _quote(ltp: str) -> Quote:
    return Quote(1, Decimal(ltp), NOW)


def test_an_option_with_a_quoted_future_of_its_expiry_is_valued_by_black76_on_that_future(settings):
    settings.OPTIONS_RISK_FREE_RATE_BP = 700
    future = Instrument(tradingsymbol="NIFTY26DECFUT", instrument_type="FUT")
    pricing = chain_pricing(
        spot_instrument=Instrument(instrument_type="INDEX"), spot=Decimal(26000), future=future,
        future_quote=_quote("26120.5"), years=0.08,
    )  # fmt: skip
    assert (pricing.model, pricing.underlying_price, pricing.rate) == ("black76", 26120.5, 0.07)
    assert pricing.label == "Black-76 on NIFTY26DECFUT"


def test_an_index_without_a_future_quote_is_valued_on_its_spot_carried_to_expiry():
    pricing = chain_pricing(
        spot_instrument=Instrument(instrument_type="INDEX"), spot=Decimal(26000), future=None, future_quote=None,
        years=0.1,
    )  # fmt: skip
    assert pricing.model == "black76" and pricing.underlying_price == pytest.approx(26000 * 2.718281828**0.0065)
    assert pricing.label == "Black-76 on the spot carried to expiry"


def test_a_stock_without_a_future_is_valued_by_black_scholes_on_its_spot():
    pricing = chain_pricing(
        spot_instrument=Instrument(instrument_type="EQ"), spot=Decimal(1500), future=None, future_quote=None, years=0.1
    )
    assert (pricing.model, pricing.underlying_price) == ("black_scholes", 1500.0)
    # its IV solver and Greeks are Black-Scholes': a call's delta is N(d1), not discounted
    vol = pricing.implied_volatility(price=40.0, strike=1500.0, call=True)
    assert vol is not None and 0.05 < vol < 1
    assert 0.5 < pricing.greeks(strike=1500.0, vol=vol, call=True).delta < 0.6


def test_without_any_price_there_is_no_valuation():
    assert chain_pricing(spot_instrument=None, spot=None, future=None, future_quote=None, years=0.1) is None
