"""Parameter pieces the rule strategy and the built-ins share: an instrument by exchange and symbol, a
size in units or lots, a distance in percent or points, a wall-clock time in IST.

Every model refuses unknown fields, and every number is bounded, so a hostile payload fails validation
(``StrategyInvalid`` naming the field) instead of reaching arithmetic.
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from strategies.contract import Context
from strategies.contract import Params as BaseParams

MAX_PRICE = Decimal(10**9)

Price = Annotated[Decimal, Field(ge=-MAX_PRICE, le=MAX_PRICE, decimal_places=4, allow_inf_nan=False)]
PositivePrice = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, decimal_places=4, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(gt=0, le=100, decimal_places=4, allow_inf_nan=False)]
Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
Lots = Annotated[int, Field(ge=1, le=10_000)]
Product = Literal["MIS", "NRML", "CNC"]
Timeframe = Literal[1, 3, 5, 10, 15, 30, 60]


def invalid_at(*errors: tuple[tuple[str | int, ...], str]) -> ValidationError:
    """A validation error at the given field paths (relative to the model raising it, which pydantic
    prefixes with the model's own path), for checks that span fields but belong to one of them."""
    return ValidationError.from_exception_data(
        "Params",
        [
            InitErrorDetails(
                type=PydanticCustomError("invalid", "{message}", {"message": message}), loc=loc, input=None
            )
            for loc, message in errors
        ],
    )


_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _wall_clock(value: Any) -> Any:
    # Only "HH:MM" (or a time object from Python): pydantic would also take seconds since midnight or a
    # zone, which for an IST wall-clock time are more likely mistakes than intent.
    if isinstance(value, time):
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError("give a wall-clock time in IST in whole minutes, without a zone")
        return value
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise ValueError("give a time as HH:MM in IST, like 15:15")
    return value


# Written back as "HH:MM" in JSON, so a definition's stored parameters validate again as they were given.
ClockTime = Annotated[
    time, BeforeValidator(_wall_clock), PlainSerializer(lambda value: value.strftime("%H:%M"), when_used="json")
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstrumentRef(Model):
    """An instrument as the exchange lists it, e.g. ``{"exchange": "NSE", "symbol": "RELIANCE"}``."""

    exchange: Annotated[str, Field(pattern=r"^[A-Z]{2,5}$")]
    symbol: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9 &_.\-]{0,39}$")]

    def resolve(self, ctx: Context) -> int:
        """The instrument id through ``ctx.instruments``; raises LookupError when the symbol master lacks it."""
        instrument_id = ctx.instruments.lookup(self.exchange, self.symbol)
        if instrument_id is None:
            raise LookupError(f"{self.exchange}:{self.symbol} is not in the symbol master")
        return instrument_id


class Distance(Model):
    """How far from a reference price: ``{"percent": "1.5"}`` of it, or ``{"points": "20"}``."""

    percent: Percent | None = None
    points: PositivePrice | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Distance:
        if (self.percent is None) == (self.points is None):
            raise invalid_at((("percent",), "give exactly one of percent or points"))
        return self

    def of(self, price: Decimal) -> Decimal:
        """The distance in price units from ``price``."""
        if self.percent is not None:
            return price * self.percent / 100
        assert self.points is not None
        return self.points


class SizedParams(BaseParams):
    """Parameters with a size: ``quantity`` in units, or ``lots`` of the instrument's lot size."""

    quantity: Quantity | None = None
    lots: Lots | None = None

    @model_validator(mode="after")
    def _one_size(self) -> Any:
        if (self.quantity is None) == (self.lots is None):
            raise invalid_at((("quantity",), "give exactly one of quantity or lots"))
        return self

    def size(self, ctx: Context, instrument_id: int) -> int:
        """The base quantity: ``quantity``, or ``lots`` times the instrument's lot size."""
        if self.quantity is not None:
            return self.quantity
        assert self.lots is not None
        return self.lots * ctx.instruments.lot_size(instrument_id)
