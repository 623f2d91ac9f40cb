"""The option chain's strategy builder: legs picked on the chain (or from a template), their payoff at
expiry and today, the margin they would block, and placing them together as a basket.

A leg is an option of the chain's underlying and expiry, bought or sold, a number of lots, at a price
(the option's last price unless the trader typed one): the price is both the premium of the payoff
and the limit price of the order. Every leg is checked before anything is computed or placed; a bad
leg is refused as ``StrategyInvalid`` (422) naming the field (``legs[2].lots``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from brokers.adapters.registry import adapter_for
from core.errors import ApplicationError
from core.parse import int_or_none
from marketdata.greeks import Greeks
from marketdata.models import Instrument, InstrumentType
from marketdata.options import OptionChain
from marketdata.payoff import Payoff, PayoffLeg, curve, curve_today, payoff
from marketdata.quotes import get_quotes
from orders.margin import group_margin
from orders.models import OrderType, Product, Side, Source
from orders.schemas import order_lots, order_price
from orders.services import BasketResult, OrderRequest, place_basket

MAX_LEGS = 8
ZERO = Decimal(0)

# name -> (label, legs as (strikes from the money, CE or PE, side)); strikes are the chain's, in order.
TEMPLATES: dict[str, tuple[str, list[tuple[int, str, str]]]] = {
    "long_straddle": ("Long straddle", [(0, "CE", "BUY"), (0, "PE", "BUY")]),
    "short_straddle": ("Short straddle", [(0, "CE", "SELL"), (0, "PE", "SELL")]),
    "long_strangle": ("Long strangle", [(2, "CE", "BUY"), (-2, "PE", "BUY")]),
    "short_strangle": ("Short strangle", [(2, "CE", "SELL"), (-2, "PE", "SELL")]),
    "bull_call_spread": ("Bull call spread", [(0, "CE", "BUY"), (2, "CE", "SELL")]),
    "bear_put_spread": ("Bear put spread", [(0, "PE", "BUY"), (-2, "PE", "SELL")]),
    "iron_condor": (
        "Iron condor",
        [(2, "CE", "SELL"), (4, "CE", "BUY"), (-2, "PE", "SELL"), (-4, "PE", "BUY")],
    ),
}


class StrategyInvalid(ApplicationError):
    code = "strategy_invalid"
    status = 422


@dataclass(frozen=True, slots=True)
class LegInput:
    """One leg as the form sends it: every field a string, unchecked."""

    instrument: str
    side: str
    lots: str
    price: str = ""


@dataclass(frozen=True, slots=True)
class StrategyLeg:
    instrument: Instrument
    strike: Decimal
    side: str
    lots: int
    price: Decimal
    ltp: Decimal | None
    iv: Decimal | None  # per cent
    greeks: Greeks | None

    @property
    def quantity(self) -> int:
        return self.lots * max(self.instrument.lot_size, 1)

    @property
    def sign(self) -> int:
        return 1 if self.side == Side.BUY else -1

    @property
    def call(self) -> bool:
        return self.instrument.instrument_type == InstrumentType.CE

    def payoff_leg(self) -> PayoffLeg:
        return PayoffLeg(self.strike, self.call, self.sign, self.quantity, self.price)


@dataclass(frozen=True, slots=True)
class PositionGreeks:
    """The position's Greeks in rupees: per 1 rupee of the underlying (delta, gamma), per calendar day
    (theta), per 1 point of volatility (vega)."""

    delta: float
    gamma: float
    theta: float
    vega: float


@dataclass(frozen=True, slots=True)
class StrategyAnalysis:
    legs: list[StrategyLeg]
    payoff: Payoff
    expiry_curve: list[tuple[Decimal, Decimal]]
    today_curve: list[tuple[Decimal, Decimal]] | None
    greeks: PositionGreeks | None
    margin: Decimal | None  # None when the account's broker cannot say
    underlying_price: Decimal | None  # what the chart's x axis measures: the future's price for Black-76


def _refuse(leg: int, field: str, message: str, code: str) -> StrategyInvalid:
    return StrategyInvalid(f"Leg {leg + 1}: {message}", code=code, extra={"field": f"legs[{leg}].{field}", "leg": leg})


def _clean(text: str) -> str:
    """A form value as read: trimmed, and cut where no number or side is that long (NUL bytes never get
    here: core.request_guard refuses the request first)."""
    return text.strip()[:41]


def parse_legs(raw: list[LegInput], chain: OptionChain) -> list[StrategyLeg]:
    """Return the checked legs, valued on ``chain`` (its underlying price, pricing model and expiry).

    Raises StrategyInvalid naming the first bad field: too many legs, an instrument that is unknown or
    not an option of the chain's underlying and expiry, a side other than BUY/SELL, lots that are not a
    whole number from 1 up (``lots_out_of_range`` ...), a price that is not a positive price, or no
    price given while the option has no last price yet."""
    if len(raw) > MAX_LEGS:
        raise StrategyInvalid(
            f"A strategy has at most {MAX_LEGS} legs.", code="too_many_legs", extra={"field": "legs", "max": MAX_LEGS}
        )
    ids = []
    for n, leg in enumerate(raw):
        pk = int_or_none(_clean(leg.instrument))
        if pk is None or not 0 < pk < 2**63:
            raise _refuse(n, "instrument", "choose an option from the chain.", "leg_instrument_unknown")
        ids.append(pk)
    instruments = Instrument.objects.in_bulk(ids)
    quotes = get_quotes(ids)
    legs = []
    for n, (leg, pk) in enumerate(zip(raw, ids, strict=True)):
        instrument = instruments.get(pk)
        if instrument is None or not instrument.is_active:
            raise _refuse(n, "instrument", f"there is no instrument {pk}.", "leg_instrument_unknown")
        if (
            instrument.instrument_type not in (InstrumentType.CE, InstrumentType.PE)
            or instrument.underlying != chain.underlying
            or instrument.expiry != chain.expiry
            or instrument.strike is None
        ):
            raise _refuse(
                n,
                "instrument",
                f"{instrument.tradingsymbol} is not a {chain.underlying} option expiring {chain.expiry:%d %b %Y}.",
                "leg_not_in_chain",
            )
        side = _clean(leg.side).upper()
        if side not in (Side.BUY, Side.SELL):
            raise _refuse(n, "side", "the side is BUY or SELL.", "leg_side_invalid")
        lots_text = _clean(leg.lots)
        try:
            lots = order_lots(lots_text, instrument.lot_size)
        except ApplicationError as error:
            raise _refuse(n, "lots", error.message, error.code) from None
        quote = quotes.get(pk)
        price_text = _clean(leg.price)
        if price_text:
            try:
                price = order_price(price_text)
            except ApplicationError as error:
                raise _refuse(n, "price", error.message, error.code) from None
            if price <= 0:
                raise _refuse(n, "price", "the price must be above zero.", "price_not_positive")
        elif quote is not None and quote.ltp > 0:
            price = quote.ltp
        else:
            raise _refuse(n, "price", f"{instrument.tradingsymbol} has no last price yet: type one.", "leg_no_price")
        strike, call = instrument.strike, instrument.instrument_type == InstrumentType.CE
        iv: Decimal | None = None
        greeks: Greeks | None = None
        if chain.pricing is not None and quote is not None and quote.ltp > 0:
            vol = chain.pricing.implied_volatility(price=float(quote.ltp), strike=float(strike), call=call)
            if vol is not None:
                iv = Decimal(vol * 100).quantize(Decimal("0.01"))
                greeks = chain.pricing.greeks(strike=float(strike), vol=vol, call=call)
        legs.append(StrategyLeg(instrument, strike, side, lots, price, quote.ltp if quote else None, iv, greeks))
    return legs


def template_legs(name: str, chain: OptionChain) -> list[LegInput]:
    """Return the legs of a template around the chain's at-the-money strike, one lot each at the last
    price. Raises StrategyInvalid for an unknown template or one whose strikes the chain does not show."""
    if name not in TEMPLATES:
        raise StrategyInvalid(
            f"There is no template {name[:40]!r}.", code="template_unknown", extra={"field": "template"}
        )
    atm = next((i for i, row in enumerate(chain.rows) if row.atm), None)
    legs = []
    for offset, kind, side in TEMPLATES[name][1]:
        index = None if atm is None else atm + offset
        row = chain.rows[index] if index is not None and 0 <= index < len(chain.rows) else None
        option = None if row is None else (row.call if kind == "CE" else row.put)
        if option is None:
            raise StrategyInvalid(
                f"The chain shows too few strikes for a {TEMPLATES[name][0].lower()}: show more strikes each side.",
                code="template_out_of_range",
                extra={"field": "template"},
            )
        legs.append(LegInput(str(option.instrument.pk), side, "1"))
    return legs


def strategy_margin(*, account, legs: list[StrategyLeg]) -> Decimal | None:
    """Return the margin the legs would block at the account's broker, each leg as a new order of its
    own (``orders.margin.group_margin``, the rule the order path blocks by); no offset between legs is
    assumed, so a hedged strategy may block less at a broker with spread benefit. None when the
    account's broker cannot be reached for its margin rates."""
    try:
        adapter = adapter_for(account)
        return sum(
            (
                group_margin(
                    adapter=adapter,
                    instrument=leg.instrument,
                    product=Product.NRML,
                    net=0,
                    average=ZERO,
                    orders=[(leg.side, leg.quantity, leg.price)],
                )
                for leg in legs
            ),
            ZERO,
        )
    except ApplicationError:
        return None


def _chart_range(legs: list[StrategyLeg], spot: Decimal | None) -> tuple[Decimal, Decimal]:
    strikes = [leg.strike for leg in legs]
    low, high = min(strikes), max(strikes)
    if spot is not None:
        low, high = min(low, spot), max(high, spot)
    margin = max((high - low) * Decimal("0.6"), (spot or high) * Decimal("0.03"))
    return max(low - margin, ZERO), high + margin


def _leg_pricer(chain: OptionChain, leg: StrategyLeg) -> Callable[[float], float] | None:
    pricing = chain.pricing
    if pricing is None or leg.iv is None:
        return None
    vol, strike, call = float(leg.iv) / 100, float(leg.strike), leg.call
    # The chart's x axis is the price the chain values options on (the future, for Black-76).
    return lambda underlying: pricing.at(underlying).greeks(strike=strike, vol=vol, call=call).price


def analyse(*, legs: list[StrategyLeg], chain: OptionChain, account) -> StrategyAnalysis:
    """Return the legs' payoff (net premium, max profit and loss, breakevens), the P&L curves at
    expiry and today, the position's Greeks and the margin before placing."""
    payoff_legs = [leg.payoff_leg() for leg in legs]
    centre = Decimal(str(round(chain.pricing.underlying_price, 2))) if chain.pricing is not None else chain.spot
    low, high = _chart_range(legs, centre)
    expiry_curve = curve(payoff_legs, low, high)
    today = curve_today(payoff_legs, [_leg_pricer(chain, leg) for leg in legs], [s for s, _ in expiry_curve])
    position_greeks = None
    if all(leg.greeks is not None for leg in legs):
        position_greeks = PositionGreeks(
            *(
                sum(leg.sign * leg.quantity * getattr(leg.greeks, name) for leg in legs)
                for name in ("delta", "gamma", "theta", "vega")
            )
        )
    return StrategyAnalysis(
        legs=legs,
        payoff=payoff(payoff_legs),
        expiry_curve=expiry_curve,
        today_curve=today,
        greeks=position_greeks,
        margin=strategy_margin(account=account, legs=legs) if account is not None else None,
        underlying_price=centre,
    )


def place_strategy(*, actor, account, legs: list[StrategyLeg], form_token: str, ip: str | None) -> list[BasketResult]:
    """Place the legs as one basket of limit orders (NRML, at each leg's price) through the order
    system's basket placement: every leg is checked before any is placed (OrderInvalid
    ``basket_invalid`` names the refused legs), then each leg's result comes back in order. The form's
    one-time token makes a double submit place the basket once."""
    requests = [
        OrderRequest(
            instrument_id=leg.instrument.pk,
            side=leg.side,
            quantity=leg.quantity,
            order_type=OrderType.LIMIT,
            product=Product.NRML,
            price=leg.price,
        )
        for leg in legs
    ]
    return place_basket(
        actor=actor,
        account=account,
        requests=requests,
        source=Source.WEB,
        idempotency_key=f"strategy:{form_token[:64]}" if form_token else None,
        ip=ip,
    )
