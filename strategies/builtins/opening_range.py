"""Opening range breakout: the high and low of the session's first ``range_minutes`` make the range; the
first 1-minute close above it buys, the first close below it sells (one trade a day). The stop is the
other side of the range, judged on closes; the position is closed at ``exit_at`` in any case."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from marketdata.hours import IST
from strategies.contract import Bar, Context, Fill, SingleInstrumentStrategy
from strategies.indicators import OpeningRange, close_time
from strategies.params import ClockTime, InstrumentRef, Product, SizedParams, invalid_at
from strategies.registry import register

LEG = "main"
PENDING_BARS = 3  # minutes to wait for an exit's fill before sending it again


class OpeningRangeParams(SizedParams):
    instrument: InstrumentRef
    range_minutes: Annotated[int, Field(ge=1, le=240)] = 15
    direction: Literal["both", "long", "short"] = "both"
    product: Product = "MIS"
    no_entry_after: ClockTime = time(14, 30)
    exit_at: ClockTime = time(15, 15)

    @model_validator(mode="after")
    def _times_in_order(self) -> OpeningRangeParams:
        if self.no_entry_after > self.exit_at:
            raise invalid_at((("no_entry_after",), "must not be later than exit_at"))
        return self


@register
class OpeningRangeBreakout(SingleInstrumentStrategy):
    name = "opening_range_breakout"
    title = "Opening range breakout"
    Params = OpeningRangeParams
    drive = "bar"
    timeframe = 1

    def __init__(self, params: OpeningRangeParams) -> None:
        super().__init__(params)
        self.p = params
        self.range = OpeningRange(params.range_minutes)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if bar.instrument_id != self.instrument_id(ctx):
            return
        self.range.update(bar)
        closed = close_time(bar).astimezone(IST)
        today = closed.date().isoformat()
        position = ctx.position(LEG)
        if ctx.state.get("day") != today:  # a new session: a new range, a new trade allowed
            ctx.state["day"] = today
            ctx.state.pop("traded", None)
            if not position:
                ctx.state.pop("stop", None)
        if position:
            self._manage(ctx, bar, closed.time(), position)
            return
        high, low = self.range.high, self.range.low
        if ctx.state.get("traded") or high is None or low is None or closed.time() >= self.p.no_entry_after:
            return
        quantity = self.p.size(ctx, bar.instrument_id)
        if bar.close > high and self.p.direction in ("both", "long"):
            ctx.buy(
                LEG, bar.instrument_id, quantity, product=self.p.product, reason=f"close above the range high {high}"
            )
            ctx.state.update(traded=True, stop=str(low))
        elif bar.close < low and self.p.direction in ("both", "short"):
            ctx.sell(
                LEG, bar.instrument_id, quantity, product=self.p.product, reason=f"close below the range low {low}"
            )
            ctx.state.update(traded=True, stop=str(high))

    def _manage(self, ctx: Context, bar: Bar, clock: time, position: int) -> None:
        exiting = ctx.state.get("exiting")
        if exiting is not None and exiting < PENDING_BARS:
            ctx.state["exiting"] = exiting + 1
            return
        reason = ""
        stop = Decimal(ctx.state["stop"]) if "stop" in ctx.state else None
        if clock >= self.p.exit_at:
            reason = "exit time"
        elif stop is not None and (bar.close < stop if position > 0 else bar.close > stop):
            reason = f"stop at the other side of the range, {stop}"
        if reason:
            ctx.close(LEG, reason=reason, product=self.p.product)
            ctx.state["exiting"] = 1

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if fill.leg == LEG and ctx.position(LEG) == 0:
            ctx.state.pop("exiting", None)
            ctx.state.pop("stop", None)
