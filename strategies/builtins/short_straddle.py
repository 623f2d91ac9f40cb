"""Short straddle: at ``entry_at`` sell the at-the-money call and put of an index's nearest expiry; buy a
leg back when its price rises ``leg_stop_percent`` above the premium it was sold at; buy everything back
when the straddle's mark-to-market loss reaches ``mtm_stop`` rupees, and at ``exit_at`` in any case.

Driven by 1-minute bars of the index and of both legs (not ticks): the at-the-money strike is the one
nearest the index's close of the bar that reaches ``entry_at``, and the stops are judged on the legs'
1-minute closes. The MTM is computed from the legs' own fills (what they were sold and bought back at)
and the latest close of each leg still held, for the strategy's base quantity (one multiplier unit).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import Field, model_validator

from marketdata.hours import IST
from strategies.contract import Bar, Context, Fill, OptionRow, Strategy
from strategies.indicators import close_time
from strategies.params import ClockTime, InstrumentRef, PositivePrice, Product, SizedParams, invalid_at
from strategies.registry import register

LEGS = ("ce", "pe")
RETRY_AFTER = timedelta(minutes=3)  # an exit with no fill by then is sent again


class ShortStraddleParams(SizedParams):
    underlying: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9&]{0,19}$")] = "NIFTY"
    index: InstrumentRef = InstrumentRef(exchange="NSE", symbol="NIFTY 50")
    entry_at: ClockTime = time(9, 20)
    exit_at: ClockTime = time(15, 15)
    leg_stop_percent: Annotated[Decimal, Field(gt=0, le=500, decimal_places=2, allow_inf_nan=False)] | None = None
    mtm_stop: PositivePrice | None = None
    product: Product = "MIS"

    @model_validator(mode="after")
    def _times_in_order(self) -> ShortStraddleParams:
        if self.entry_at >= self.exit_at:
            raise invalid_at((("entry_at",), "must be earlier than exit_at"))
        return self


def at_the_money(chain: list[OptionRow] | tuple[OptionRow, ...], spot: Decimal) -> tuple[OptionRow, OptionRow] | None:
    """The call and put of the strike nearest ``spot`` among strikes listing both (the lower on a tie)."""
    calls = {row.strike: row for row in chain if row.option_type == "CE"}
    puts = {row.strike: row for row in chain if row.option_type == "PE"}
    strikes = sorted(set(calls) & set(puts), key=lambda strike: (abs(strike - spot), strike))
    return (calls[strikes[0]], puts[strikes[0]]) if strikes else None


@register
class ShortStraddle(Strategy):
    name = "short_straddle"
    title = "Short straddle"
    Params = ShortStraddleParams
    drive = "bar"
    timeframe = 1

    def __init__(self, params: ShortStraddleParams) -> None:
        super().__init__(params)
        self.p = params
        self.last: dict[int, Decimal] = {}  # the latest close of each instrument seen
        self._index_id: int | None = None

    def _index(self, ctx: Context) -> int:
        if self._index_id is None:
            self._index_id = self.p.index.resolve(ctx)
        return self._index_id

    def instruments(self, ctx: Context) -> list[int]:
        return [self._index(ctx), *ctx.state.get("legs", {}).values()]

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.last[bar.instrument_id] = bar.close
        closed = close_time(bar).astimezone(IST)
        held = [leg for leg in LEGS if ctx.position(leg)]
        if ctx.state.get("day") != closed.date().isoformat() and not held:
            ctx.state.clear()  # a new session, nothing held: a new straddle allowed
            ctx.state["day"] = closed.date().isoformat()
        if held:
            self._manage(ctx, closed, held)
        elif (
            not ctx.state.get("entered")
            and bar.instrument_id == self._index(ctx)
            and self.p.entry_at <= closed.time() < self.p.exit_at
        ):
            self._enter(ctx, bar.close, closed.date())

    def _enter(self, ctx: Context, spot: Decimal, today: date) -> None:
        ctx.state["entered"] = True
        pair = at_the_money(list(ctx.instruments.options(self.p.underlying, on=today)), spot)
        if pair is None:
            ctx.note(f"no {self.p.underlying} options listed on or after {today}: no straddle today")
            return
        call, put = pair
        quantity = self.p.quantity or (self.p.lots or 0) * call.lot_size
        if quantity % call.lot_size:
            raise ValueError(f"quantity {quantity} is not a multiple of the lot size {call.lot_size}")
        ctx.state["legs"] = {"ce": call.instrument_id, "pe": put.instrument_id}
        ctx.state["strike"] = str(call.strike)
        ctx.note(f"{self.p.underlying} at {spot}: selling the {call.strike} straddle expiring {call.expiry}")
        for leg, row in (("ce", call), ("pe", put)):
            ctx.sell(leg, row.instrument_id, quantity, product=self.p.product, reason=f"sell the {row.strike} {leg}")

    def _manage(self, ctx: Context, closed: datetime, held: list[str]) -> None:
        if closed.time() >= self.p.exit_at:
            self._close(ctx, closed, held, "exit time")
            return
        if self.p.mtm_stop is not None:
            mtm = self.mtm(ctx)
            if mtm <= -self.p.mtm_stop:
                self._close(ctx, closed, held, f"MTM stop: {mtm:.2f} against a stop of -{self.p.mtm_stop}")
                return
        if self.p.leg_stop_percent is not None:
            for leg in held:
                entry = Decimal(ctx.state["entry"][leg])
                stop = entry * (1 + self.p.leg_stop_percent / 100)
                last = self.last.get(ctx.legs[leg])
                if last is not None and last >= stop:
                    self._close(ctx, closed, [leg], f"{leg} stop-loss: {last} at or above {stop:.2f}")

    def mtm(self, ctx: Context) -> Decimal:
        """Rupees made (negative: lost) on the base quantity: every fill's cash plus each held leg at its
        latest close."""
        total = Decimal(0)
        for leg, cash in ctx.state.get("cash", {}).items():
            total += Decimal(cash)
            position = ctx.position(leg)
            if position:
                total += position * self.last.get(ctx.legs[leg], Decimal(ctx.state["entry"][leg]))
        return total

    def _close(self, ctx: Context, closed: datetime, legs: list[str], reason: str) -> None:
        exiting = ctx.state.setdefault("exiting", {})
        for leg in legs:
            sent = exiting.get(leg)
            if sent is not None and closed - datetime.fromisoformat(sent) < RETRY_AFTER:
                continue
            ctx.close(leg, reason=reason, product=self.p.product)
            exiting[leg] = closed.isoformat()

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if fill.leg not in LEGS:
            return
        value = fill.price * fill.quantity
        cash = ctx.state.setdefault("cash", {})
        cash[fill.leg] = str(Decimal(cash.get(fill.leg, 0)) + (value if fill.side == "SELL" else -value))
        if fill.side == "SELL":
            sold = ctx.state.setdefault("sold", {})
            quantity, amount = sold.get(fill.leg, [0, "0"])
            quantity, amount = quantity + fill.quantity, Decimal(amount) + value
            sold[fill.leg] = [quantity, str(amount)]
            ctx.state.setdefault("entry", {})[fill.leg] = str(amount / quantity)  # the average premium sold at
        self.last.setdefault(fill.instrument_id, fill.price)
        if ctx.position(fill.leg) == 0:
            ctx.state.get("exiting", {}).pop(fill.leg, None)
