"""The project's sample symbol master: NIFTY 50 stocks, three indices, current-month futures and
monthly options around the money, a few BSE shares and MCX commodity futures, generated relative to a
date so the demo always has live contracts.

Reference data (as of December 2025; lot sizes, freeze limits and index membership are revised by NSE
from time to time, so load the broker's or exchange's master with ``load_instruments`` for trading):
- index lots: NIFTY 65, BANKNIFTY 30, FINNIFTY 60; index freeze quantities NIFTY 1800, BANKNIFTY 600,
  FINNIFTY 1800 (NSE/ICICI Direct, see docs/marketdata.md);
- stock lots: NSE market lots for the contracts of early 2026;
- stock freeze quantities: the ₹2.5 crore notional cap rounded down to a lot multiple (the exchange
  also caps at 1 % of market-wide position limit, which this sample does not model);
- tick sizes: ₹0.01 for shares priced below ₹250 (NSE, June 2025), else ₹0.05; ₹0.05 for derivatives;
- reference prices and annual volatilities: rounded recent levels, the simulator's starting points;
- BSE: a few large caps also listed there (same symbols, the NSE reference price: arbitrage keeps the
  two close, and the simulator moves both with one underlying);
- MCX: the near futures of GOLDM (100 g, quoted per 10 g, tick ₹1), SILVERM (5 kg, quoted per kg,
  tick ₹1) and CRUDEOIL (100 barrels, quoted per barrel, tick ₹1). The master has no price
  multiplier, so an MCX lot's size is the quoted units it holds (GOLDM 10, SILVERM 5, CRUDEOIL 100)
  and quantity x price is the contract value, as for NFO. Expiries follow MCX's calendar in outline:
  GOLDM on the 5th of each month, CRUDEOIL on the 19th (MCX sets it a business day or two before
  NYMEX's, which moves), SILVERM on the last day of February, April, June, August and November; a
  weekend moves one back to the Friday, holidays are not modelled.

Exchange tokens here are synthetic (eleven digits derived from the symbol, longer than any NSE token) so
they never collide with a real broker master loaded later, and a contract keeps its token when the
sample is regenerated for a new expiry.
"""

from __future__ import annotations

import calendar
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal

AS_OF = date(2025, 12, 1)
FREEZE_NOTIONAL = Decimal("25000000")  # ₹2.5 crore


@dataclass(frozen=True)
class Reference:
    symbol: str  # NSE trading symbol of the spot; also the F&O underlying name
    name: str
    price: Decimal
    lot: int
    vol: float  # annualised volatility used by the simulator and as the at-the-money IV
    strike_step: Decimal


def _r(symbol: str, name: str, price: str, lot: int, vol: float, step: str) -> Reference:
    return Reference(symbol, name, Decimal(price), lot, vol, Decimal(step))


STOCKS: tuple[Reference, ...] = (
    _r("ADANIENT", "Adani Enterprises", "2400", 300, 0.38, "20"),
    _r("ADANIPORTS", "Adani Ports and SEZ", "1480", 475, 0.30, "20"),
    _r("APOLLOHOSP", "Apollo Hospitals", "7300", 125, 0.24, "50"),
    _r("ASIANPAINT", "Asian Paints", "2850", 250, 0.22, "20"),
    _r("AXISBANK", "Axis Bank", "1270", 625, 0.24, "10"),
    _r("BAJAJ-AUTO", "Bajaj Auto", "9000", 75, 0.24, "100"),
    _r("BAJAJFINSV", "Bajaj Finserv", "2050", 250, 0.25, "20"),
    _r("BAJFINANCE", "Bajaj Finance", "1030", 750, 0.30, "10"),
    _r("BEL", "Bharat Electronics", "410", 1425, 0.32, "5"),
    _r("BHARTIARTL", "Bharti Airtel", "2100", 475, 0.22, "20"),
    _r("CIPLA", "Cipla", "1520", 375, 0.22, "20"),
    _r("COALINDIA", "Coal India", "385", 1350, 0.28, "5"),
    _r("DRREDDY", "Dr. Reddy's Laboratories", "1250", 625, 0.22, "10"),
    _r("EICHERMOT", "Eicher Motors", "7000", 100, 0.26, "50"),
    _r("ETERNAL", "Eternal", "300", 2425, 0.40, "5"),
    _r("GRASIM", "Grasim Industries", "2750", 250, 0.24, "20"),
    _r("HCLTECH", "HCL Technologies", "1620", 350, 0.24, "20"),
    _r("HDFCBANK", "HDFC Bank", "1000", 550, 0.18, "10"),
    _r("HDFCLIFE", "HDFC Life Insurance", "770", 1100, 0.24, "10"),
    _r("HINDALCO", "Hindalco Industries", "810", 700, 0.30, "10"),
    _r("HINDUNILVR", "Hindustan Unilever", "2450", 300, 0.20, "20"),
    _r("ICICIBANK", "ICICI Bank", "1390", 700, 0.20, "10"),
    _r("INDIGO", "InterGlobe Aviation", "5800", 150, 0.28, "50"),
    _r("INFY", "Infosys", "1560", 400, 0.24, "20"),
    _r("ITC", "ITC", "405", 1600, 0.18, "5"),
    _r("JIOFIN", "Jio Financial Services", "305", 2350, 0.32, "5"),
    _r("JSWSTEEL", "JSW Steel", "1150", 675, 0.28, "10"),
    _r("KOTAKBANK", "Kotak Mahindra Bank", "2130", 400, 0.22, "20"),
    _r("LT", "Larsen & Toubro", "4050", 175, 0.22, "50"),
    _r("M&M", "Mahindra & Mahindra", "3700", 200, 0.26, "50"),
    _r("MARUTI", "Maruti Suzuki India", "15800", 50, 0.22, "100"),
    _r("MAXHEALTH", "Max Healthcare Institute", "1120", 525, 0.30, "10"),
    _r("NESTLEIND", "Nestle India", "1270", 500, 0.18, "10"),
    _r("NTPC", "NTPC", "325", 1500, 0.24, "5"),
    _r("ONGC", "Oil and Natural Gas Corporation", "245", 2250, 0.28, "2.5"),
    _r("POWERGRID", "Power Grid Corporation", "270", 1900, 0.22, "2.5"),
    _r("RELIANCE", "Reliance Industries", "1550", 500, 0.22, "20"),
    _r("SBILIFE", "SBI Life Insurance", "2000", 375, 0.24, "20"),
    _r("SBIN", "State Bank of India", "970", 750, 0.24, "10"),
    _r("SHRIRAMFIN", "Shriram Finance", "840", 825, 0.32, "10"),
    _r("SUNPHARMA", "Sun Pharmaceutical", "1800", 350, 0.20, "20"),
    _r("TATACONSUM", "Tata Consumer Products", "1170", 550, 0.24, "10"),
    _r("TATASTEEL", "Tata Steel", "170", 5500, 0.30, "2"),
    _r("TCS", "Tata Consultancy Services", "3150", 175, 0.20, "20"),
    _r("TECHM", "Tech Mahindra", "1530", 600, 0.26, "20"),
    _r("TITAN", "Titan Company", "3850", 175, 0.24, "50"),
    _r("TMPV", "Tata Motors Passenger Vehicles", "360", 800, 0.34, "5"),
    _r("TRENT", "Trent", "4300", 100, 0.34, "50"),
    _r("ULTRACEMCO", "UltraTech Cement", "11800", 50, 0.22, "100"),
    _r("WIPRO", "Wipro", "250", 3000, 0.24, "2.5"),
)

BSE_STOCKS = ("RELIANCE", "TCS", "SBIN", "ITC", "BHARTIARTL")  # also listed on BSE, with the NSE reference

# MCX commodity futures: reference (price per quoted unit, lot in quoted units), tick, expiry rule
COMMODITIES: tuple[tuple[Reference, Decimal], ...] = (
    (_r("GOLDM", "Gold Mini", "130000", 10, 0.16, "1"), Decimal("1")),
    (_r("SILVERM", "Silver Mini", "175000", 5, 0.28, "1"), Decimal("1")),
    (_r("CRUDEOIL", "Crude Oil", "5300", 100, 0.35, "1"), Decimal("1")),
)

# (underlying name, index trading symbol, exchange token, reference, freeze quantity)
INDICES: tuple[tuple[Reference, str, str, int], ...] = (
    (_r("NIFTY", "NIFTY 50", "26000", 65, 0.13, "50"), "NIFTY 50", "26000", 1800),
    (_r("BANKNIFTY", "NIFTY BANK", "59000", 30, 0.15, "100"), "NIFTY BANK", "26009", 600),
    (_r("FINNIFTY", "NIFTY FINANCIAL SERVICES", "27500", 60, 0.15, "50"), "NIFTY FIN SERVICE", "26037", 1800),
)

STRIKES_EACH_SIDE_INDEX = 10
STRIKES_EACH_SIDE_STOCK = 5

FIELDS = (
    "exchange",
    "segment",
    "tradingsymbol",
    "exchange_token",
    "name",
    "instrument_type",
    "underlying",
    "expiry",
    "strike",
    "lot_size",
    "tick_size",
    "freeze_quantity",
    "lower_circuit",
    "upper_circuit",
)


def monthly_expiry(on: date) -> date:
    """Return the current monthly F&O expiry on or after ``on``: the month's last Tuesday (NSE since
    September 2025), or next month's when this month's has passed. Holiday shifts are not modelled."""
    year, month = on.year, on.month
    for _ in range(2):
        last = date(year, month, calendar.monthrange(year, month)[1])
        expiry = last - timedelta(days=(last.weekday() - calendar.TUESDAY) % 7)
        if expiry >= on:
            return expiry
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("unreachable: next month's expiry is always after today")


def _weekday_on_or_before(day: date) -> date:
    return day - timedelta(days=max(day.weekday() - calendar.FRIDAY, 0))


def _mcx_expiry_in(symbol: str, year: int, month: int) -> date | None:
    """Return ``symbol``'s expiry in that month, or None when it has no contract expiring then."""
    if symbol == "GOLDM":
        return _weekday_on_or_before(date(year, month, 5))
    if symbol == "CRUDEOIL":
        return _weekday_on_or_before(date(year, month, 19))
    if symbol == "SILVERM" and month in (2, 4, 6, 8, 11):
        return _weekday_on_or_before(date(year, month, calendar.monthrange(year, month)[1]))
    return None


def mcx_expiry(symbol: str, on: date) -> date:
    """Return the near MCX futures expiry of ``symbol`` on or after ``on`` (see the module docstring)."""
    year, month = on.year, on.month
    for _ in range(13):
        expiry = _mcx_expiry_in(symbol, year, month)
        if expiry is not None and expiry >= on:
            return expiry
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise ValueError(f"no MCX expiry rule for {symbol}")


def equity_tick_size(price: Decimal) -> Decimal:
    return Decimal("0.01") if price < 250 else Decimal("0.05")


def stock_freeze_quantity(price: Decimal, lot: int) -> int:
    lots = (FREEZE_NOTIONAL / price / lot).to_integral_value(rounding=ROUND_FLOOR)
    return max(int(lots), 1) * lot


def reference_by_underlying() -> dict[str, Reference]:
    """Return every reference keyed by the F&O underlying name (RELIANCE, NIFTY, ...)."""
    refs = {ref.symbol: ref for ref in STOCKS}
    refs.update({ref.symbol: ref for ref, *_ in INDICES})
    refs.update({ref.symbol: ref for ref, _ in COMMODITIES})
    return refs


def _derivative_symbol(underlying: str, expiry: date, suffix: str) -> str:
    return f"{underlying}{expiry:%y}{expiry:%b}".upper() + suffix


def _strike_text(strike: Decimal) -> str:
    return format(strike.normalize(), "f")


def sample_rows(today: date) -> list[dict[str, str]]:
    """Return the sample master as rows in the project's CSV layout (``FIELDS``), for ``today``."""
    expiry = monthly_expiry(today)
    rows: list[dict[str, str]] = []

    def add(**values: object) -> None:
        first_digit = {"NSE": "9", "NFO": "8", "BSE": "7", "MCX": "6"}[str(values["exchange"])]
        values.setdefault("exchange_token", first_digit + f"{zlib.crc32(str(values['tradingsymbol']).encode()):09d}")
        rows.append({field: "" if values.get(field) is None else str(values[field]) for field in FIELDS})

    def derivatives(ref: Reference, freeze: int, strikes_each_side: int) -> None:
        add(
            exchange="NFO",
            segment="NFO-FUT",
            tradingsymbol=_derivative_symbol(ref.symbol, expiry, "FUT"),
            name=ref.symbol,
            instrument_type="FUT",
            underlying=ref.symbol,
            expiry=expiry.isoformat(),
            lot_size=ref.lot,
            tick_size="0.05",
            freeze_quantity=freeze,
        )
        atm = (ref.price / ref.strike_step).to_integral_value() * ref.strike_step
        for offset in range(-strikes_each_side, strikes_each_side + 1):
            strike = atm + offset * ref.strike_step
            for kind in ("CE", "PE"):
                add(
                    exchange="NFO",
                    segment="NFO-OPT",
                    tradingsymbol=_derivative_symbol(ref.symbol, expiry, _strike_text(strike) + kind),
                    name=ref.symbol,
                    instrument_type=kind,
                    underlying=ref.symbol,
                    expiry=expiry.isoformat(),
                    strike=_strike_text(strike),
                    lot_size=ref.lot,
                    tick_size="0.05",
                    freeze_quantity=freeze,
                )

    for ref, symbol, exchange_token, freeze in INDICES:
        add(
            exchange="NSE",
            segment="INDICES",
            tradingsymbol=symbol,
            exchange_token=exchange_token,
            name=ref.name,
            instrument_type="INDEX",
            underlying=ref.symbol,
            lot_size=1,
            tick_size="0.05",
        )
        derivatives(ref, freeze, STRIKES_EACH_SIDE_INDEX)
    for ref in STOCKS:
        # Stocks in F&O have no fixed circuit (a dummy 10 % operating range applies); 20 % is shown.
        add(
            exchange="NSE",
            segment="NSE",
            tradingsymbol=ref.symbol,
            name=ref.name,
            instrument_type="EQ",
            underlying=ref.symbol,
            lot_size=1,
            tick_size=equity_tick_size(ref.price),
            lower_circuit=(ref.price * Decimal("0.8")).quantize(Decimal("0.05")),
            upper_circuit=(ref.price * Decimal("1.2")).quantize(Decimal("0.05")),
        )
        derivatives(ref, stock_freeze_quantity(ref.price, ref.lot), STRIKES_EACH_SIDE_STOCK)
    stocks = {ref.symbol: ref for ref in STOCKS}
    for symbol in BSE_STOCKS:
        ref = stocks[symbol]
        add(
            exchange="BSE",
            segment="BSE",
            tradingsymbol=ref.symbol,
            name=ref.name,
            instrument_type="EQ",
            underlying=ref.symbol,
            lot_size=1,
            tick_size=equity_tick_size(ref.price),
            lower_circuit=(ref.price * Decimal("0.8")).quantize(Decimal("0.05")),
            upper_circuit=(ref.price * Decimal("1.2")).quantize(Decimal("0.05")),
        )
    for ref, tick in COMMODITIES:
        commodity_expiry = mcx_expiry(ref.symbol, today)
        add(
            exchange="MCX",
            segment="MCX-FUT",
            tradingsymbol=_derivative_symbol(ref.symbol, commodity_expiry, "FUT"),
            name=ref.symbol,
            instrument_type="FUT",
            underlying=ref.symbol,
            expiry=commodity_expiry.isoformat(),
            lot_size=ref.lot,
            tick_size=tick,
        )
    return rows
