import math
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from marketdata.errors import InvalidExpiry, UnknownUnderlying
from marketdata.feeds.simulator import smile
from marketdata.models import Instrument
from marketdata.options import (
    RATE,
    black_scholes,
    implied_volatility,
    option_chain,
    option_underlyings,
    years_to_expiry,
)
from marketdata.quotes import Quote, set_quotes

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 11:30 IST
EXPIRY = date(2026, 12, 29)


@pytest.mark.parametrize("call", [True, False])
@pytest.mark.parametrize("strike", [20000.0, 25000.0, 26000.0, 27000.0, 32000.0])
@pytest.mark.parametrize("vol", [0.05, 0.13, 0.4, 1.5])
def test_a_price_turned_into_iv_and_back_gives_the_same_price(call, strike, vol):
    price = black_scholes(spot=26000.0, strike=strike, years=0.1, vol=vol, call=call)
    intrinsic = (
        max(26000.0 - strike * math.exp(-RATE * 0.1), 0.0)
        if call
        else max(strike * math.exp(-RATE * 0.1) - 26000.0, 0.0)
    )
    if price - intrinsic < 0.01:
        pytest.skip("no time value: no volatility is recoverable from the price")
    iv = implied_volatility(price=price, spot=26000.0, strike=strike, years=0.1, call=call)
    assert iv is not None
    assert black_scholes(spot=26000.0, strike=strike, years=0.1, vol=iv, call=call) == pytest.approx(price, abs=1e-5)


def test_it_recovers_the_volatility_an_option_was_priced_with():
    price = black_scholes(spot=2950.0, strike=3000.0, years=30 / 365, vol=0.22, call=True)
    assert implied_volatility(price=price, spot=2950.0, strike=3000.0, years=30 / 365, call=True) == pytest.approx(
        0.22, abs=1e-6
    )


@pytest.mark.parametrize(
    ("price", "call", "years"),
    [
        (0.0, True, 0.1),  # nothing to solve
        (-5.0, False, 0.1),
        (500.0, True, 0.0),  # expired
        (900.0, True, 0.1),  # a 25,000 call on a 26,000 spot is worth more than its intrinsic 1,000+
        (26001.0, True, 0.1),  # a call worth more than the spot
        (30000.0, False, 0.1),  # a put worth more than the discounted strike
    ],
)
def test_it_gives_no_iv_for_a_price_outside_the_no_arbitrage_bounds(price, call, years):
    assert implied_volatility(price=price, spot=26000.0, strike=25000.0, years=years, call=call) is None


def test_years_to_expiry_counts_to_the_close_of_the_expiry_day_and_never_goes_negative():
    assert years_to_expiry(EXPIRY, datetime(2026, 12, 29, 10, 0, tzinfo=UTC)) == 0.0
    assert years_to_expiry(EXPIRY, datetime(2026, 12, 28, 10, 0, tzinfo=UTC)) == pytest.approx(1 / 365)


def _quote(symbol: str, ltp: float) -> Quote:
    instrument = Instrument.objects.get(tradingsymbol=symbol)
    return Quote(instrument.pk, Decimal(str(round(ltp, 2))), NOW, oi=1234, close=Decimal("1"))


def test_the_chain_pairs_calls_and_puts_by_strike_around_the_money_with_iv(sample_master):
    spot = 26030.0
    years = years_to_expiry(EXPIRY, NOW)
    quotes = [_quote("NIFTY 50", spot)]
    for strike in (25950, 26000, 26050):
        vol = smile(0.13, strike=strike, forward=spot)
        for kind in ("CE", "PE"):
            price = black_scholes(spot=spot, strike=strike, years=years, vol=vol, call=kind == "CE")
            quotes.append(_quote(f"NIFTY26DEC{strike}{kind}", price))
    set_quotes(quotes)

    chain = option_chain(underlying="nifty", strikes_each_side=2, now=NOW)

    assert chain.underlying == "NIFTY" and chain.expiry == EXPIRY and chain.spot == Decimal("26030.0")
    assert [row.strike for row in chain.rows] == [25950, 26000, 26050, 26100, 26150]
    assert [row.strike for row in chain.rows if row.atm] == [26050]
    atm = chain.rows[2]
    assert atm.call.instrument.tradingsymbol == "NIFTY26DEC26050CE" and atm.put.instrument.instrument_type == "PE"
    assert atm.call.quote.oi == 1234
    # the IV comes back as the smile the prices were made with (to the rounding of the price to paise)
    assert float(atm.call.iv) == pytest.approx(smile(0.13, strike=26050, forward=spot) * 100, abs=0.05)
    assert chain.rows[4].call.quote is None and chain.rows[4].call.iv is None
    assert chain.rows[0].call.itm and not chain.rows[0].put.itm and chain.rows[2].put.itm
    assert len(chain.instrument_ids) == 1 + 5 * 2


def test_without_a_spot_quote_the_chain_centres_on_the_middle_strike(sample_master):
    chain = option_chain(underlying="RELIANCE", strikes_each_side=1, now=NOW)
    assert len(chain.rows) == 3 and chain.rows[1].atm and chain.spot is None
    assert chain.spot_instrument.tradingsymbol == "RELIANCE"


def test_it_refuses_an_underlying_without_options(sample_master):
    with pytest.raises(UnknownUnderlying) as error:
        option_chain(underlying="NOSUCH", now=NOW)
    assert error.value.status == 404


def test_it_refuses_an_expiry_the_underlying_does_not_have_and_lists_those_it_has(sample_master):
    with pytest.raises(InvalidExpiry) as error:
        option_chain(underlying="NIFTY", expiry=date(2026, 12, 30), now=NOW)
    assert error.value.status == 422 and error.value.extra["expiries"] == ["2026-12-29"]


def test_indices_come_first_among_underlyings_with_options(sample_master):
    names = option_underlyings()
    assert names[:3] == ["BANKNIFTY", "FINNIFTY", "NIFTY"] and "RELIANCE" in names
