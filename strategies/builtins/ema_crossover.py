"""EMA crossover: long when the fast EMA crosses above the slow one; on the cross back, out (long-only) or
short (long-short). Optionally flat at ``exit_at`` with no entries from then on."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import Field, model_validator

from marketdata.hours import IST
from strategies.contract import Bar, Context, SingleInstrumentStrategy
from strategies.indicators import Ema, close_time
from strategies.params import ClockTime, InstrumentRef, Product, SizedParams, Timeframe, invalid_at
from strategies.registry import register

LEG = "main"


class EmaCrossoverParams(SizedParams):
    instrument: InstrumentRef
    timeframe: Timeframe = 5
    fast: Annotated[int, Field(ge=1, le=200)] = 9
    slow: Annotated[int, Field(ge=2, le=500)] = 21
    mode: Literal["long_only", "long_short"] = "long_only"
    product: Product = "MIS"
    exit_at: ClockTime | None = None

    @model_validator(mode="after")
    def _fast_is_faster(self) -> EmaCrossoverParams:
        if self.fast >= self.slow:
            raise invalid_at((("fast",), "must be shorter than slow"))
        return self


@register
class EmaCrossover(SingleInstrumentStrategy):
    name = "ema_crossover"
    title = "EMA crossover"
    Params = EmaCrossoverParams
    drive = "bar"

    def __init__(self, params: EmaCrossoverParams) -> None:
        super().__init__(params)
        self.p = params
        self.fast, self.slow = Ema(params.fast), Ema(params.slow)
        # The EMAs' floats: they order as their Decimal values do, and comparing is all this strategy does.
        self.previous: tuple[float, float] | None = None

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if bar.instrument_id != (self._instrument_id or self.instrument_id(ctx)):  # resolved on the first bar
            return
        close = float(bar.close)  # both EMAs are of the close (Ema.update's conversion, made once)
        fast, slow = self.fast.push(close), self.slow.push(close)
        previous, self.previous = self.previous, (fast, slow) if fast is not None and slow is not None else None
        if self.p.exit_at is not None and _at_or_after(bar, self.p.exit_at):
            ctx.close(LEG, reason="exit time", product=self.p.product)
            return
        if previous is None or fast is None or slow is None:
            return
        crossed_up = previous[0] <= previous[1] and fast > slow
        crossed_down = previous[0] >= previous[1] and fast < slow
        if not (crossed_up or crossed_down):
            return
        position = ctx.position(LEG)
        quantity = self.p.size(ctx, bar.instrument_id)
        if crossed_up and position <= 0:
            ctx.close(LEG, reason="fast EMA crossed above slow", product=self.p.product)
            ctx.buy(LEG, bar.instrument_id, quantity, product=self.p.product, reason="fast EMA crossed above slow")
        elif crossed_down and position >= 0:
            ctx.close(LEG, reason="fast EMA crossed below slow", product=self.p.product)
            if self.p.mode == "long_short":
                ctx.sell(LEG, bar.instrument_id, quantity, product=self.p.product, reason="fast EMA crossed below slow")


def _at_or_after(bar: Bar, limit: time | None) -> bool:
    return limit is not None and close_time(bar).astimezone(IST).time() >= limit
