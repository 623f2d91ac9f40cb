"""The simulated exchanges' matching rules (paper and backtests), as pure functions of one order and a quote.

- MARKET orders become protected limits (market-price protection, as exchanges require): the limit is
  the last price moved by the protection percentage (with its absolute floor) against the buyer or
  seller; what cannot fill inside it rests at that limit (DAY) or is cancelled (IOC).
- Fills consume the displayed depth of the opposite side, level by level, up to the limit; with no
  displayed depth the whole quantity fills at the best price (or the last price).
- MARKET fills pay a configurable slippage (basis points), never beyond the protected limit.
- Bars (backtests): a MARKET order fills at one price of a bar, a LIMIT when the bar crosses it, SL and
  SL-M when the bar's range touches the trigger; ``slices`` cuts a quantity above the freeze limit.
- SL and SL-M wait for the last price to touch the trigger (buy: at or above, sell: at or below),
  then act as LIMIT and MARKET respectively.

Simplification, documented in docs/orders.md: depth is not consumed across orders (every resting order
sees the full displayed depth of each new quote).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from marketdata.quotes import Quote

BUY, SELL = "BUY", "SELL"

# Market-price protection: (percentage of LTP, absolute floor in rupees, LTP at or below which the floor applies).
# Futures and options are the exchange's numbers; cash has no exchange-mandated band, so the strictest
# broker schedule in our reference is used (2 % below 100, 1 % to 500, 0.5 % above).
FUTURES_MPP = (Decimal("0.05"), Decimal("2.5"), Decimal("50"))
OPTIONS_MPP = (Decimal("0.20"), Decimal("10"), None)


def round_to_tick(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    """Return ``price`` rounded to a multiple of ``tick``, upwards or downwards."""
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return (steps * tick).quantize(tick)


def protection_amount(instrument_type: str, ltp: Decimal) -> Decimal:
    """Return how far from ``ltp`` a market order may fill."""
    if instrument_type == "FUT":
        pct, floor, floor_below = FUTURES_MPP
        amount = ltp * pct
        return max(amount, floor) if ltp <= floor_below else amount
    if instrument_type in {"CE", "PE"}:
        pct, floor, _ = OPTIONS_MPP
        return max(ltp * pct, floor)
    pct = Decimal("0.02") if ltp < 100 else Decimal("0.01") if ltp <= 500 else Decimal("0.005")
    return ltp * pct


def protected_limit(*, side: str, instrument_type: str, ltp: Decimal, tick: Decimal) -> Decimal:
    """Return the limit price a MARKET order is converted to (never below one tick for a sell)."""
    amount = protection_amount(instrument_type, ltp)
    if side == BUY:
        return round_to_tick(ltp + amount, tick, up=False)
    return max(round_to_tick(ltp - amount, tick, up=True), tick)


def is_triggered(*, side: str, trigger: Decimal, ltp: Decimal) -> bool:
    return ltp >= trigger if side == BUY else ltp <= trigger


@dataclass(frozen=True, slots=True)
class Match:
    fills: list[tuple[int, Decimal]]  # (quantity, price) in order

    @property
    def quantity(self) -> int:
        return sum(q for q, _ in self.fills)


def match(
    *,
    side: str,
    remaining: int,
    limit: Decimal,
    quote: Quote,
    tick: Decimal,
    slippage_bps: int = 0,
) -> Match:
    """Return the fills ``remaining`` units get against ``quote`` without crossing ``limit``.

    ``slippage_bps`` moves each fill price against the order (used for MARKET orders), capped at the limit.
    """
    if remaining <= 0:
        return Match([])
    if side == BUY:
        levels = [(lv.price, lv.quantity) for lv in sorted(quote.asks, key=lambda lv: lv.price) if lv.quantity > 0]
        if not levels and quote.ask is not None and quote.ask_qty > 0:
            levels = [(quote.ask, quote.ask_qty)]
        crosses = lambda price: price <= limit  # noqa: E731
    else:
        levels = [(lv.price, lv.quantity) for lv in sorted(quote.bids, key=lambda lv: -lv.price) if lv.quantity > 0]
        if not levels and quote.bid is not None and quote.bid_qty > 0:
            levels = [(quote.bid, quote.bid_qty)]
        crosses = lambda price: price >= limit  # noqa: E731
    if not levels:
        # A feed without depth: the last price stands for an unlimited book.
        best = quote.ask if side == BUY and quote.ask is not None else quote.bid if side == SELL and quote.bid else None
        levels = [(best if best is not None else quote.ltp, remaining)]
    fills: list[tuple[int, Decimal]] = []
    for price, available in levels:
        if remaining <= 0 or not crosses(price):
            break
        quantity = min(available, remaining)
        fills.append((quantity, _slipped(price, side=side, limit=limit, tick=tick, bps=slippage_bps)))
        remaining -= quantity
    return Match(fills)


def _slipped(price: Decimal, *, side: str, limit: Decimal, tick: Decimal, bps: int) -> Decimal:
    if not bps:
        return price
    moved = price * bps / Decimal(10_000)
    if side == BUY:
        return min(round_to_tick(price + moved, tick, up=True), limit)
    return max(round_to_tick(price - moved, tick, up=False), limit)


# --- bars ------------------------------------------------------------------------------------------------
# A backtest sees bars, not quotes. Each rule below turns a bar into the price the order meets and meets
# it as ``match`` meets a quote without depth (``match_at``), so protection, slippage and tick rounding are
# the ones above.


def match_at(
    *, side: str, remaining: int, price: Decimal, limit: Decimal, tick: Decimal, slippage_bps: int = 0
) -> Match:
    """Return what ``match`` gives against a quote without depth whose last price is ``price``: all of
    ``remaining`` at ``price`` (moved ``slippage_bps`` against the order, capped at the limit) if ``price``
    is within ``limit``, else nothing. Written out for backtests, which meet a price a bar for every fill
    (building a Quote for it cost more than the rest of the fill)."""
    if remaining <= 0 or not (price <= limit if side == BUY else price >= limit):
        return Match([])
    return Match([(remaining, _slipped(price, side=side, limit=limit, tick=tick, bps=slippage_bps))])


def bar_market_fill(
    *,
    side: str,
    quantity: int,
    price: Decimal,
    instrument_type: str,
    tick: Decimal,
    slippage_bps: int,
) -> Match:
    """Return the fill of a MARKET order at ``price`` (the next bar's open, or the signal bar's close):
    the whole quantity at ``price`` moved ``slippage_bps`` against the order, never beyond the protected
    limit of that price."""
    limit = protected_limit(side=side, instrument_type=instrument_type, ltp=price, tick=tick)
    return match_at(side=side, remaining=quantity, price=price, limit=limit, tick=tick, slippage_bps=slippage_bps)


def bar_limit_price(*, side: str, limit: Decimal, open: Decimal, high: Decimal, low: Decimal) -> Decimal | None:
    """Return the price a resting LIMIT order fills at in a bar, or None if the bar does not cross it:
    a buy fills when the low reaches the limit, at the open if the bar opened through it (a gap), else
    at the limit; a sell the mirror."""
    if side == BUY:
        if low > limit:
            return None
        return open if open <= limit else limit
    if high < limit:
        return None
    return open if open >= limit else limit


def bar_trigger_price(*, side: str, trigger: Decimal, open: Decimal, high: Decimal, low: Decimal) -> Decimal | None:
    """Return the price at which a bar touches an SL or SL-M ``trigger`` (a buy's: the high at or above
    it; a sell's: the low at or below it), or None: the open if the bar opened beyond the trigger, else
    the trigger itself. ``is_triggered`` decides, on the bar's extreme."""
    extreme = high if side == BUY else low
    if not is_triggered(side=side, trigger=trigger, ltp=extreme):
        return None
    return open if is_triggered(side=side, trigger=trigger, ltp=open) else trigger


def bar_limit_fill(
    *, side: str, quantity: int, limit: Decimal, open: Decimal, high: Decimal, low: Decimal, tick: Decimal
) -> Match:
    """Return the fill of a LIMIT order in a bar (empty when the bar does not cross it)."""
    price = bar_limit_price(side=side, limit=limit, open=open, high=high, low=low)
    if price is None:
        return Match([])
    return match_at(side=side, remaining=quantity, price=price, limit=limit, tick=tick)


def slices(quantity: int, freeze_quantity: int | None, lot_size: int = 1) -> list[int]:
    """Return ``quantity`` cut into orders of at most ``freeze_quantity`` (rounded down to whole lots), as
    the exchanges require above the freeze limit; one slice when there is no freeze limit."""
    if not freeze_quantity or quantity <= freeze_quantity:
        return [quantity]
    most = max(freeze_quantity // lot_size * lot_size, lot_size)
    full, rest = divmod(quantity, most)
    return [most] * full + ([rest] if rest else [])
