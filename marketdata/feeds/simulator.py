"""A simulated market: geometric Brownian motion per underlying, derivatives priced off it.

- Each underlying (a stock or an index) follows GBM with its own annual volatility, in trading time
  (252 days of 6¼ hours), so intraday moves look like the market's whatever the wall clock says.
- Futures are the spot carried at ``RATE`` to expiry; options are Black-Scholes prices of the spot
  with an implied volatility that smiles away from the money.
- Every emitted quote has a last traded price on the instrument's tick, a cumulative volume that
  grows by lots, five levels of depth each side (not for indices), open/high/low of the session,
  the previous close, and open interest for futures and options.
- ``seed`` makes a run reproducible: the same instruments, seed and clock give the same quotes.
- ``resume_from`` (each instrument's last quote before a restart) continues the market where it stopped
  instead of from the reference levels: the underlyings from their spots' last prices (or a future's,
  carried back), and each contract's session open/high/low, previous close, volume and open interest.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from marketdata.feeds.base import QuoteCallback, ThreadedFeed
from marketdata.hours import MARKET_CLOSE, market_open
from marketdata.models import Instrument, InstrumentType
from marketdata.options import black_scholes
from marketdata.quotes import DepthLevel, Quote
from marketdata.sample_master import reference_by_underlying

IST = ZoneInfo("Asia/Kolkata")
RATE = 0.065  # risk-free rate for carry and Black-Scholes, roughly the Indian T-bill yield
TRADING_SECONDS_PER_YEAR = 252 * 6.25 * 3600
CALENDAR_SECONDS_PER_YEAR = 365 * 24 * 3600
DEFAULT_VOL = 0.25
DEPTH_LEVELS = 5


@dataclass
class _Underlying:
    price: float
    vol: float


@dataclass
class _Contract:
    instrument_id: int
    kind: str
    underlying: str
    tick: Decimal
    lot: int
    expiry_at: datetime | None = None
    strike: float | None = None
    vol: float = DEFAULT_VOL
    volume: int = 0
    oi: int = 0
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    session: date | None = None


def smile(atm_vol: float, *, strike: float, forward: float) -> float:
    """Return the implied volatility at ``strike``: higher away from the money, more so for puts' side."""
    moneyness = math.log(strike / forward)
    return max(atm_vol * (1 + 1.5 * moneyness * moneyness - 0.4 * moneyness), 0.05)


def _price_tick(tick_size) -> Decimal:
    """The tick as a Decimal whose exponent is the price's display precision: at least 2 places
    (0.05 -> 0.05, 1 -> 1.00), more when the tick needs them (0.0025 stays 0.0025)."""
    tick = Decimal(tick_size).normalize() if tick_size else Decimal("0.05")
    return tick.quantize(Decimal(1).scaleb(min(tick.as_tuple().exponent, -2)))


def _on_tick(value: float, tick: Decimal) -> Decimal:
    price = (Decimal(repr(max(value, 0.0))) / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick
    return max(price, tick)


def _liquidity(contract: _Contract, spot: float) -> float:
    """How often a contract trades relative to the others: indices and stocks tick most, then futures;
    options by moneyness, so at-the-money strikes tick often and far out-of-the-money ones rarely."""
    if contract.kind == InstrumentType.INDEX:
        return 8.0
    if contract.strike is None or spot <= 0:
        return 8.0 if contract.kind == InstrumentType.EQ else 6.0  # stocks, then futures
    return 0.1 + 4.0 * math.exp(-8.0 * abs(math.log(contract.strike / spot)))


def underlying_key(instrument: Instrument) -> str:
    """The name derivatives use for this instrument's underlying (NIFTY, RELIANCE)."""
    if instrument.underlying:
        return instrument.underlying
    return (
        instrument.name
        if instrument.instrument_type == InstrumentType.INDEX and instrument.name
        else (instrument.tradingsymbol)
    )


class MarketSession:
    """When the simulator trades: always (the default, so the demo is live at any hour) or NSE hours."""

    def __init__(self, *, mode: str = "always", holidays: Iterable[date] = ()) -> None:
        self.mode = mode
        self.holidays = set(holidays)

    def is_open(self, now: datetime) -> bool:
        if self.mode == "always":
            return True
        return market_open(now) and now.astimezone(IST).date() not in self.holidays


class Simulator:
    """The market model: ``step(now, seconds, count)`` advances it and returns ``count`` quotes."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        *,
        seed: int | None = None,
        resume_from: dict[int, Quote] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        refs = reference_by_underlying()
        resume_from = resume_from or {}
        start_prices = self._resumed_prices(instruments, resume_from)
        self.underlyings: dict[str, _Underlying] = {}
        self.contracts: list[_Contract] = []
        for instrument in sorted(instruments, key=lambda i: i.pk):
            key = underlying_key(instrument)
            ref = refs.get(key)
            if key not in self.underlyings:
                price = start_prices.get(key) or (ref.price if ref else None) or self._guess_price(instrument)
                self.underlyings[key] = _Underlying(float(price), ref.vol if ref else DEFAULT_VOL)
            contract = _Contract(
                instrument_id=instrument.pk,
                kind=instrument.instrument_type,
                underlying=key,
                tick=_price_tick(instrument.tick_size),
                lot=max(instrument.lot_size, 1),
                vol=self.underlyings[key].vol,
            )
            if instrument.expiry is not None:
                contract.expiry_at = datetime.combine(instrument.expiry, MARKET_CLOSE, IST).astimezone(UTC)
            if instrument.strike is not None:
                contract.strike = float(instrument.strike)
            if contract.kind in {InstrumentType.FUT, InstrumentType.CE, InstrumentType.PE}:
                contract.oi = contract.lot * self.rng.randint(200, 20_000)
            self.contracts.append(contract)
        self._carry = 0.0
        self._last: dict[int, Decimal] = {}
        for contract in self.contracts:
            if (last := resume_from.get(contract.instrument_id)) is not None:
                self._resume(contract, last)
        # Selection weights as exponents for weighted sampling without replacement (Efraimidis-Spirakis).
        self._inverse_weights = [
            1.0 / _liquidity(contract, self.underlyings[contract.underlying].price) for contract in self.contracts
        ]

    @staticmethod
    def _resumed_prices(instruments: Sequence[Instrument], last: dict[int, Quote]) -> dict[str, Decimal]:
        """Each underlying's level from the last quotes: its spot's price, else its nearest future's
        discounted by the carry left at that quote's time."""
        prices: dict[str, Decimal] = {}
        futures: dict[str, tuple[datetime, Decimal]] = {}
        for instrument in instruments:
            quote = last.get(instrument.pk)
            if quote is None:
                continue
            key = underlying_key(instrument)
            if instrument.instrument_type in {InstrumentType.EQ, InstrumentType.INDEX}:
                prices.setdefault(key, quote.ltp)
            elif instrument.instrument_type == InstrumentType.FUT and instrument.expiry is not None:
                expiry_at = datetime.combine(instrument.expiry, MARKET_CLOSE, IST).astimezone(UTC)
                years = max((expiry_at - quote.ts).total_seconds(), 0.0) / CALENDAR_SECONDS_PER_YEAR
                if key not in futures or expiry_at < futures[key][0]:
                    futures[key] = (expiry_at, quote.ltp / Decimal(repr(math.exp(RATE * years))))
        for key, (_, spot) in futures.items():
            prices.setdefault(key, spot)
        return prices

    def _resume(self, contract: _Contract, last: Quote) -> None:
        """Continue a contract from its last quote: within that quote's session its day (open, high, low,
        previous close, volume) goes on; in a later one the last price becomes the previous close. A quote
        rebuilt from a stored candle has no day: the day starts again from its price."""
        self._last[contract.instrument_id] = last.ltp
        if last.oi:
            contract.oi = last.oi
        if last.open is not None:
            contract.session = last.ts.astimezone(IST).date()
            contract.open, contract.high, contract.low, contract.close = last.open, last.high, last.low, last.close
            contract.volume = last.volume

    def _guess_price(self, instrument: Instrument) -> Decimal:
        """A starting level for an instrument with no reference: its circuit mid-point, strike, or a
        seeded pick between 100 and 3000."""
        if instrument.lower_circuit and instrument.upper_circuit:
            return (instrument.lower_circuit + instrument.upper_circuit) / 2
        if instrument.strike:
            return instrument.strike
        return Decimal(self.rng.randint(100, 3000))

    def spot(self, key: str) -> float:
        return self.underlyings[key].price

    def advance(self, seconds: float) -> None:
        """Move every underlying by one GBM step of ``seconds`` of trading time."""
        dt = seconds / TRADING_SECONDS_PER_YEAR
        for underlying in self.underlyings.values():
            shock = self.rng.gauss(0.0, 1.0)
            sigma = underlying.vol
            underlying.price *= math.exp(-0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * shock)

    def fair_value(self, contract: _Contract, now: datetime) -> float:
        spot = self.spot(contract.underlying)
        if contract.kind in {InstrumentType.EQ, InstrumentType.INDEX}:
            return spot
        years = 0.0
        if contract.expiry_at is not None:
            years = max((contract.expiry_at - now).total_seconds(), 0.0) / CALENDAR_SECONDS_PER_YEAR
        forward = spot * math.exp(RATE * years)
        if contract.kind == InstrumentType.FUT:
            return forward
        strike = contract.strike or spot
        vol = smile(contract.vol, strike=strike, forward=forward)
        return black_scholes(spot=spot, strike=strike, years=years, vol=vol, call=contract.kind == InstrumentType.CE)

    def quote(self, contract: _Contract, now: datetime) -> Quote:
        ltp = _on_tick(self.fair_value(contract, now), contract.tick)
        session = now.astimezone(IST).date()
        if contract.session != session:
            # A new session: the last price so far becomes the previous close, the day's range restarts.
            contract.close = self._last.get(contract.instrument_id, ltp)
            contract.open = contract.high = contract.low = ltp
            contract.volume = 0
            contract.session = session
        contract.high = max(contract.high or ltp, ltp)
        contract.low = min(contract.low or ltp, ltp)
        self._last[contract.instrument_id] = ltp
        if contract.kind == InstrumentType.INDEX:
            return Quote(
                instrument_id=contract.instrument_id,
                ltp=ltp,
                ts=now,
                open=contract.open,
                high=contract.high,
                low=contract.low,
                close=contract.close,
            )
        uniform = self.rng.random  # integers from random() directly: randint is the simulator's hot spot
        lot = contract.lot
        contract.volume += lot * max(1, int(self.rng.expovariate(0.25)))
        if contract.oi:
            contract.oi = max(lot, contract.oi + lot * (int(uniform() * 41) - 20))
        tick = contract.tick
        spread = tick * (1, 1, 1, 2, 3)[int(uniform() * 5)]
        bid = max(ltp - tick * int(uniform() * 2), tick)
        ask = bid + spread
        bids = tuple(
            DepthLevel(max(bid - tick * level, tick), lot * (1 + int(uniform() * 60)), 1 + int(uniform() * 25))
            for level in range(DEPTH_LEVELS)
        )
        asks = tuple(
            DepthLevel(ask + tick * level, lot * (1 + int(uniform() * 60)), 1 + int(uniform() * 25))
            for level in range(DEPTH_LEVELS)
        )
        return Quote(
            instrument_id=contract.instrument_id,
            ltp=ltp,
            ts=now,
            bid=bid,
            ask=ask,
            bid_qty=sum(level.quantity for level in bids),
            ask_qty=sum(level.quantity for level in asks),
            volume=contract.volume,
            oi=contract.oi,
            open=contract.open,
            high=contract.high,
            low=contract.low,
            close=contract.close,
            bids=bids,
            asks=asks,
        )

    def step(
        self, *, now: datetime, seconds: float, rate: float, clock: Callable[[], datetime] | None = None
    ) -> list[Quote]:
        """Advance the market by ``seconds`` and return about ``rate * seconds`` quotes (each a distinct
        instrument, chosen at random weighted by liquidity), stamped ``now``, or with ``clock()`` read as
        each is made (the live feed: a quote's time is when it came to exist, however long the batch takes
        to build)."""
        self.advance(seconds)
        self._carry += rate * seconds
        count = min(int(self._carry), len(self.contracts))
        self._carry -= count
        if count <= 0:
            return []
        if count < len(self.contracts):
            uniform = self.rng.random
            keys = [uniform() ** inverse for inverse in self._inverse_weights]
            chosen = heapq.nlargest(count, range(len(keys)), key=keys.__getitem__)
        else:
            chosen = range(count)
        if clock is None:
            return [self.quote(self.contracts[index], now) for index in sorted(chosen)]
        batch = []
        for position, index in enumerate(sorted(chosen), start=1):
            batch.append(self.quote(self.contracts[index], clock()))
            if position % 25 == 0:
                # In standalone mode this thread shares the interpreter with the web server's event loop:
                # hand it the GIL often, so building a batch never holds sockets back for long.
                time.sleep(0)
        return batch


@dataclass
class SimulatorSettings:
    rate: float = 200.0  # quotes per second across all instruments
    interval: float = 0.05  # seconds between batches
    seed: int | None = None
    session: MarketSession = field(default_factory=MarketSession)


class SimulatedFeed(ThreadedFeed):
    """The simulator as a feed: one batch every ``interval`` seconds while the session is open."""

    name = "sim"

    def __init__(
        self,
        *,
        on_quotes: QuoteCallback,
        config: SimulatorSettings,
        resume_from: dict[int, Quote] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(on_quotes=on_quotes)
        self.config = config
        self.resume_from = resume_from or {}
        self.clock = clock
        self.on_idle = on_idle
        self.instruments: list[Instrument] = []
        self.simulator: Simulator | None = None

    def subscribe(self, instruments: Sequence[Instrument]) -> None:
        known = {i.pk for i in self.instruments}
        self.instruments.extend(i for i in instruments if i.pk not in known)
        self.simulator = Simulator(self.instruments, seed=self.config.seed, resume_from=self.resume_from)

    def run(self, stop: threading.Event) -> None:
        if self.simulator is None:
            raise RuntimeError("subscribe() the simulator to instruments before start()")
        interval = self.config.interval
        next_at = time.monotonic()
        while not stop.is_set():
            now = self.clock()
            if self.config.session.is_open(now):
                batch = self.simulator.step(now=now, seconds=interval, rate=self.config.rate, clock=self.clock)
                if batch:
                    self.on_quotes(batch)
            elif self.on_idle is not None:
                self.on_idle()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < -1:  # fell behind (a paused process): skip ahead rather than burst
                next_at = time.monotonic()
            stop.wait(max(delay, 0.0))
