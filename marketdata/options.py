"""Option pricing and the option chain: Black-Scholes, an implied-volatility solver, and the chain of
an underlying's calls and puts for one expiry with live quotes, open interest, IV and Greeks
(marketdata/greeks.py).

The chain prices every option on one underlying price (``ChainPricing``): Black-76 on the future of
the same expiry when there is one with a quote; else, for an index, Black-76 on the spot carried to
expiry at the risk-free rate; else (a stock) Black-Scholes on the dividend-adjusted spot. The symbol
master holds no dividends, so that spot is the last price; ``greeks.dividend_adjusted_spot`` is where
known dividends would be subtracted. IV is solved in the same model, and the Greeks use that IV.

The simulator (marketdata/feeds/simulator.py) prices options with ``black_scholes`` from here, so an
IV computed from a simulated price recovers the simulator's volatility (its smile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from marketdata.errors import InvalidExpiry, UnknownUnderlying
from marketdata.greeks import Greeks, black76_greeks, black_scholes_greeks, spot_of_future
from marketdata.models import Instrument, InstrumentType
from marketdata.quotes import Quote, get_quotes

IST = ZoneInfo("Asia/Kolkata")
RATE = 0.065  # risk-free rate for carry and Black-Scholes, roughly the Indian T-bill yield
EXPIRY_TIME = dtime(15, 30)  # contracts expire at the close of their expiry day (IST)
CALENDAR_SECONDS_PER_YEAR = 365 * 24 * 3600
MIN_VOL, MAX_VOL = 1e-4, 5.0
DEFAULT_STRIKES_EACH_SIDE = 10


def risk_free_rate() -> float:
    """The chain's annual risk-free rate as a fraction (the ``OPTIONS_RISK_FREE_RATE_BP`` setting)."""
    return settings.OPTIONS_RISK_FREE_RATE_BP / 10_000


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(*, spot: float, strike: float, years: float, vol: float, call: bool, rate: float = RATE) -> float:
    """Return the Black-Scholes price of a European option (no dividends); intrinsic value at expiry."""
    if years <= 0 or vol <= 0:
        return max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    root = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * years) / root
    d2 = d1 - root
    discount = math.exp(-rate * years)
    if call:
        return spot * norm_cdf(d1) - strike * discount * norm_cdf(d2)
    return strike * discount * norm_cdf(-d2) - spot * norm_cdf(-d1)


def vega(*, spot: float, strike: float, years: float, vol: float, rate: float = RATE) -> float:
    """Return dPrice/dVol (per unit of volatility, same for calls and puts)."""
    if years <= 0 or vol <= 0:
        return 0.0
    root = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * years) / root
    return spot * math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) * math.sqrt(years)


def implied_volatility(
    *, price: float, spot: float, strike: float, years: float, call: bool, rate: float = RATE, tolerance: float = 1e-6
) -> float | None:
    """Return the annualised volatility at which Black-Scholes gives ``price``, or None when there is
    none: no time left, non-positive inputs, or a price outside the no-arbitrage bounds (below the
    discounted intrinsic value, or above the spot for a call / the discounted strike for a put).

    Newton's method on vega, kept inside a bisection bracket [MIN_VOL, MAX_VOL] so it always converges.
    """
    if years <= 0 or spot <= 0 or strike <= 0 or price <= 0:
        return None
    discount = math.exp(-rate * years)
    lower = max(spot - strike * discount, 0.0) if call else max(strike * discount - spot, 0.0)
    upper = spot if call else strike * discount
    if not lower < price < upper:
        return None
    low, high = MIN_VOL, MAX_VOL
    if black_scholes(spot=spot, strike=strike, years=years, vol=high, call=call, rate=rate) < price:
        return None
    if black_scholes(spot=spot, strike=strike, years=years, vol=low, call=call, rate=rate) > price:
        return None
    vol = 0.3
    for _ in range(100):
        value = black_scholes(spot=spot, strike=strike, years=years, vol=vol, call=call, rate=rate)
        diff = value - price
        if abs(diff) < tolerance:
            return vol
        if diff > 0:
            high = vol
        else:
            low = vol
        slope = vega(spot=spot, strike=strike, years=years, vol=vol, rate=rate)
        step = vol - diff / slope if slope > 1e-12 else None
        vol = step if step is not None and low < step < high else (low + high) / 2
        if high - low < 1e-10:
            return vol
    return vol


def years_to_expiry(expiry: date, now: datetime) -> float:
    """Return the calendar years from ``now`` to the close of ``expiry`` (IST), never negative."""
    expires_at = datetime.combine(expiry, EXPIRY_TIME, IST).astimezone(UTC)
    return max((expires_at - now).total_seconds(), 0.0) / CALENDAR_SECONDS_PER_YEAR


# --- the chain ------------------------------------------------------------------------------------
@dataclass
class ChainSide:
    instrument: Instrument
    quote: Quote | None
    iv: Decimal | None  # in per cent, 2 places
    itm: bool
    greeks: Greeks | None = None  # at the IV; None without an IV


@dataclass(frozen=True)
class ChainPricing:
    """The price every option of a chain is valued on, and how: ``model`` is "black76" (on a future,
    or for an index on the spot carried to expiry) or "black_scholes" (a stock's spot)."""

    model: str
    underlying_price: float
    source: str  # what the price is: a future's trading symbol, or "spot"
    years: float
    rate: float

    def at(self, underlying_price: float) -> ChainPricing:
        """The same valuation with the underlying at another price (a payoff curve for today)."""
        return replace(self, underlying_price=underlying_price)

    def greeks(self, *, strike: float, vol: float, call: bool) -> Greeks:
        if self.model == "black76":
            return black76_greeks(
                future=self.underlying_price, strike=strike, years=self.years, vol=vol, call=call, rate=self.rate
            )
        return black_scholes_greeks(
            spot=self.underlying_price, strike=strike, years=self.years, vol=vol, call=call, rate=self.rate
        )

    def implied_volatility(self, *, price: float, strike: float, call: bool) -> float | None:
        """The volatility at which this model gives ``price``: Black-76 on F is Black-Scholes on F·e^(-rT)."""
        spot = (
            spot_of_future(future=self.underlying_price, years=self.years, rate=self.rate)
            if self.model == "black76"
            else self.underlying_price
        )
        return implied_volatility(price=price, spot=spot, strike=strike, years=self.years, call=call, rate=self.rate)

    @property
    def underlying_decimal(self) -> Decimal:
        return Decimal(str(round(self.underlying_price, 2)))

    @property
    def rate_percent(self) -> float:
        return self.rate * 100

    @property
    def label(self) -> str:
        if self.model == "black_scholes":
            return "Black-Scholes on the spot"
        if self.source == "spot":
            return "Black-76 on the spot carried to expiry"
        return f"Black-76 on {self.source}"


@dataclass
class ChainRow:
    strike: Decimal
    call: ChainSide | None
    put: ChainSide | None
    atm: bool


@dataclass
class OptionChain:
    underlying: str
    spot_instrument: Instrument | None
    spot_quote: Quote | None
    expiry: date
    expiries: list[date]
    rows: list[ChainRow]
    pricing: ChainPricing | None = None

    @property
    def spot(self) -> Decimal | None:
        return self.spot_quote.ltp if self.spot_quote else None

    @property
    def instrument_ids(self) -> list[int]:
        ids = [self.spot_instrument.pk] if self.spot_instrument else []
        for row in self.rows:
            ids += [side.instrument.pk for side in (row.call, row.put) if side]
        return ids


def option_underlyings() -> list[str]:
    """Return the names of underlyings with active options, indices first, then alphabetically."""
    names = set(
        Instrument.objects.filter(instrument_type__in=[InstrumentType.CE, InstrumentType.PE], is_active=True)
        .values_list("underlying", flat=True)
        .distinct()
    )
    indices = set(
        Instrument.objects.filter(instrument_type=InstrumentType.INDEX, underlying__in=names).values_list(
            "underlying", flat=True
        )
    )
    return sorted(names, key=lambda name: (name not in indices, name))


def _spot_instrument(underlying: str) -> Instrument | None:
    return (
        Instrument.objects.filter(instrument_type__in=[InstrumentType.INDEX, InstrumentType.EQ], is_active=True)
        .filter(Q(underlying=underlying) | Q(tradingsymbol=underlying, exchange="NSE"))
        .order_by("instrument_type")  # "EQ" < "INDEX": a stock's own listing before anything else
        .first()
    )


def _future_of(underlying: str, expiry: date) -> Instrument | None:
    return (
        Instrument.objects.filter(
            underlying=underlying, expiry=expiry, instrument_type=InstrumentType.FUT, is_active=True
        )
        .order_by("pk")
        .first()
    )


def chain_pricing(
    *,
    spot_instrument: Instrument | None,
    spot: Decimal | None,
    future: Instrument | None,
    future_quote: Quote | None,
    years: float,
) -> ChainPricing | None:
    """How the chain is valued (module docstring), or None with neither a future's nor the spot's price."""
    rate = risk_free_rate()
    if future is not None and future_quote is not None and future_quote.ltp > 0:
        return ChainPricing("black76", float(future_quote.ltp), future.tradingsymbol, years, rate)
    if spot is None or spot <= 0:
        return None
    if spot_instrument is not None and spot_instrument.instrument_type == InstrumentType.INDEX:
        return ChainPricing("black76", float(spot) * math.exp(rate * years), "spot", years, rate)
    return ChainPricing("black_scholes", float(spot), "spot", years, rate)


def _valued(pricing: ChainPricing | None, quote: Quote | None, strike: Decimal, call: bool):
    """The option's IV in per cent (2 places) and its Greeks at that IV, or (None, None)."""
    if pricing is None or quote is None or quote.ltp <= 0:
        return None, None
    vol = pricing.implied_volatility(price=float(quote.ltp), strike=float(strike), call=call)
    if vol is None:
        return None, None
    greeks = pricing.greeks(strike=float(strike), vol=vol, call=call)
    return Decimal(vol * 100).quantize(Decimal("0.01")), greeks


def option_chain(
    *,
    underlying: str,
    expiry: date | None = None,
    strikes_each_side: int = DEFAULT_STRIKES_EACH_SIDE,
    now: datetime | None = None,
) -> OptionChain:
    """Return the chain of ``underlying``'s options expiring on ``expiry`` (default: the nearest one not
    yet expired), ``strikes_each_side`` strikes either side of the at-the-money strike, with last quotes
    and implied volatility and Greeks (from each option's last price and the underlying's, valued as the
    module docstring says).

    Raises UnknownUnderlying when no active option has that underlying, InvalidExpiry when it has none
    expiring on ``expiry`` (``extra.expiries`` lists those it has)."""
    now = now or datetime.now(UTC)
    name = underlying.strip().upper()
    options = Instrument.objects.filter(
        underlying=name, instrument_type__in=[InstrumentType.CE, InstrumentType.PE], is_active=True
    )
    expiries = sorted(set(options.values_list("expiry", flat=True)) - {None})
    if not expiries:
        raise UnknownUnderlying(f"no options on {underlying!r}", extra={"underlying": underlying})
    if expiry is None:
        today = now.astimezone(IST).date()
        expiry = next((e for e in expiries if e >= today), expiries[-1])
    elif expiry not in expiries:
        raise InvalidExpiry(
            f"{name} has no options expiring on {expiry.isoformat()}",
            extra={"expiry": expiry.isoformat(), "expiries": [e.isoformat() for e in expiries]},
        )
    contracts = list(options.filter(expiry=expiry))
    spot_instrument = _spot_instrument(name)
    future = _future_of(name, expiry)
    extra = [i.pk for i in (spot_instrument, future) if i is not None]
    quotes = get_quotes([c.pk for c in contracts] + extra)
    spot_quote = quotes.get(spot_instrument.pk) if spot_instrument else None
    spot = spot_quote.ltp if spot_quote else None

    by_strike: dict[Decimal, dict[str, Instrument]] = {}
    for contract in contracts:
        by_strike.setdefault(contract.strike, {})[contract.instrument_type] = contract
    strikes = sorted(by_strike)
    reference = spot if spot is not None else strikes[len(strikes) // 2]
    atm = min(strikes, key=lambda s: (abs(s - reference), s))
    middle = strikes.index(atm)
    shown = strikes[max(middle - strikes_each_side, 0) : middle + strikes_each_side + 1]
    years = years_to_expiry(expiry, now)
    pricing = chain_pricing(
        spot_instrument=spot_instrument,
        spot=spot,
        future=future,
        future_quote=quotes.get(future.pk) if future else None,
        years=years,
    )

    def side(contract: Instrument | None, strike: Decimal, call: bool) -> ChainSide | None:
        if contract is None:
            return None
        quote = quotes.get(contract.pk)
        itm = spot is not None and (strike < spot if call else strike > spot)
        iv, greeks = _valued(pricing, quote, strike, call)
        return ChainSide(contract, quote, iv, itm, greeks)

    rows = [
        ChainRow(
            strike=strike,
            call=side(by_strike[strike].get(InstrumentType.CE), strike, True),
            put=side(by_strike[strike].get(InstrumentType.PE), strike, False),
            atm=strike == atm,
        )
        for strike in shown
    ]
    return OptionChain(name, spot_instrument, spot_quote, expiry, expiries, rows, pricing)
