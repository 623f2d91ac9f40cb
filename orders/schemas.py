"""Shapes of the order API. They check types and bounds only; every business rule lives in the services.

Every number a client sends is read by ``order_quantity``, ``order_price`` or ``record_id`` before
pydantic sees it: a value that is not a number, not finite, out of range, not whole or more precise
than the order's columns is refused as ``OrderInvalid`` (422) with a code naming the field
(``quantity_out_of_range``, ``price_not_finite``, ...), so no later arithmetic can raise on it. Zero and
negative quantities and prices pass through to the pre-trade rules, which refuse them by name and
audit it. The bounds are rms.services' (docs/orders.md, "Bounds").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated
from uuid import UUID

from ninja import Field, Schema
from pydantic import BaseModel, BeforeValidator

from orders.errors import OrderInvalid
from rms.services import MAX_ORDER_QUANTITY, MAX_PRICE, PRICE_PLACES

MAX_ID = 2**63 - 1  # a bigint primary key
_PRICE_STEP = Decimal(1).scaleb(-PRICE_PLACES)
_MAX_TEXT = 40  # characters of a number sent as a string; more is not a price or a quantity


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def _refuse(field: str, problem: str, message: str, **extra) -> OrderInvalid:
    return OrderInvalid(message, code=f"{field}_{problem}", extra={"field": field, **extra})


def _number(field: str, raw) -> Decimal:
    """Return a JSON or form value (number or string) as a finite Decimal, read exactly."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise _refuse(field, "not_a_number", f"{_label(field)} must be a number.")
    if isinstance(raw, str) and len(raw.strip()) > _MAX_TEXT:
        raise _refuse(field, "out_of_range", f"{_label(field)} has too many digits.")
    try:
        # A float is read through its shortest repr (990.05, not 990.04999...); inf and nan stay so.
        number = Decimal(raw.strip() if isinstance(raw, str) else str(raw) if isinstance(raw, float) else raw)
    except (InvalidOperation, ValueError):
        raise _refuse(field, "not_a_number", f"{_label(field)} must be a number.") from None
    if not number.is_finite():
        raise _refuse(field, "not_finite", f"{_label(field)} must be a finite number.")
    return number


def whole_number(field: str, raw, *, maximum: int, minimum: int | None = None) -> int:
    """Return ``raw`` as an int in [``minimum`` (default -``maximum``), ``maximum``]; raise OrderInvalid
    naming ``field`` (``<field>_not_a_number``, ``_not_finite``, ``_out_of_range``, ``_not_whole``)."""
    number = _number(field, raw)
    low = -maximum if minimum is None else minimum
    if not low <= number <= maximum:
        raise _refuse(
            field, "out_of_range", f"{_label(field)} must be between {low} and {maximum}.", min=low, max=maximum
        )
    if number != number.to_integral_value():
        raise _refuse(field, "not_whole", f"{_label(field)} must be a whole number.")
    return int(number)


def order_quantity(raw, field: str = "quantity") -> int:
    """Return an order quantity as sent, bounded by ``MAX_ORDER_QUANTITY`` (zero and below are left to
    the pre-trade rule ``quantity_not_positive``)."""
    return whole_number(field, raw, maximum=MAX_ORDER_QUANTITY)


def order_lots(raw, lot_size: int) -> int:
    """Return a number of lots as a form sends it: whole, from 1 to as many lots as the largest order
    holds (``lots_out_of_range``, ``lots_not_whole``, ``lots_not_a_number``)."""
    return whole_number("lots", raw, maximum=max(MAX_ORDER_QUANTITY // max(lot_size, 1), 1), minimum=1)


def order_price(raw, field: str = "price") -> Decimal:
    """Return a price or trigger price as sent: finite, below ``MAX_PRICE`` either side of zero, with
    at most ``PRICE_PLACES`` decimals (``<field>_too_precise``)."""
    number = _number(field, raw)
    if not -MAX_PRICE < number < MAX_PRICE:
        raise _refuse(field, "out_of_range", f"{_label(field)} must be below {MAX_PRICE}.", max=str(MAX_PRICE))
    if number != number.quantize(_PRICE_STEP):
        raise _refuse(field, "too_precise", f"{_label(field)} takes at most {PRICE_PLACES} decimal places.")
    return number


def _optional(read, field: str):
    return BeforeValidator(lambda raw: None if raw is None else read(raw, field))


def record_id(raw, field: str) -> int:
    """Return an id (account, instrument, kill switch target) as sent, between 1 and a bigint's maximum."""
    return whole_number(field, raw, maximum=MAX_ID, minimum=1)


Quantity = Annotated[int, BeforeValidator(order_quantity)]
IcebergLegs = Annotated[int | None, _optional(lambda raw, field: whole_number(field, raw, maximum=100), "iceberg_legs")]
IcebergQuantity = Annotated[int | None, _optional(order_quantity, "iceberg_quantity")]
Price = Annotated[Decimal | None, _optional(order_price, "price")]
TriggerPrice = Annotated[Decimal | None, _optional(order_price, "trigger_price")]
AccountId = Annotated[int, BeforeValidator(lambda raw: record_id(raw, "account_id"))]
InstrumentId = Annotated[int, BeforeValidator(lambda raw: record_id(raw, "instrument_id"))]


class OrderIn(Schema):
    account_id: AccountId
    instrument_id: InstrumentId
    side: str = Field(description="BUY or SELL")
    quantity: Quantity = Field(description=f"Units (lots x lot size), at most {MAX_ORDER_QUANTITY}")
    order_type: str = Field(description="MARKET, LIMIT, SL or SL-M")
    product: str = Field(description="CNC, MIS or NRML")
    validity: str = "DAY"
    price: Price = Field(None, description=f"Below {MAX_PRICE}, at most {PRICE_PLACES} decimals")
    trigger_price: TriggerPrice = Field(None, description=f"Below {MAX_PRICE}, at most {PRICE_PLACES} decimals")
    variety: str = Field(
        "regular",
        max_length=16,
        description="regular, amo, co (a cover order: trigger_price is its stop-loss) or iceberg, as the account's "
        "broker takes them",
    )
    iceberg_legs: IcebergLegs = Field(None, description="Iceberg orders: 2 to 10 legs")
    iceberg_quantity: IcebergQuantity = Field(None, description="Iceberg orders: each leg's quantity")
    tag: str = Field("", max_length=40)
    strategy: str = Field("", max_length=64)
    algo_id: str = Field("", max_length=40)


class ModifyIn(BaseModel):
    """Every field is optional, so the body must be a JSON object: a ninja ``Schema`` would read a list
    or a number as an object with no fields set."""

    quantity: Annotated[int | None, _optional(order_quantity, "quantity")] = None
    price: Price = None
    trigger_price: TriggerPrice = None
    order_type: str | None = None


class BasketIn(Schema):
    orders: list[OrderIn] = Field(..., min_length=1, max_length=50)


class ClosePositionIn(Schema):
    account_id: AccountId
    instrument_id: InstrumentId
    product: str


class KillSwitchIn(Schema):
    scope: str = Field(description="global, organisation, account or user")
    target_id: Annotated[int | None, _optional(record_id, "target_id")] = None
    reason: str = Field("", max_length=300)


class OrderOut(Schema):
    id: int
    client_order_id: UUID
    account_id: int
    instrument_id: int
    side: str
    quantity: int
    filled_quantity: int
    average_price: Decimal | None
    order_type: str
    product: str
    validity: str
    variety: str
    iceberg_legs: int | None
    iceberg_quantity: int | None
    price: Decimal | None
    trigger_price: Decimal | None
    status: str
    broker_order_id: str
    message: str
    tag: str
    algo_id: str
    source: str
    slice_group: UUID | None
    created_at: datetime
    updated_at: datetime


class BasketLegOut(Schema):
    """One leg's outcome, in the order sent: the orders it placed (several when sliced), or the error
    ({"code", "message", "extra"}) that stopped it."""

    leg: int
    orders: list[OrderOut]
    error: dict | None


class TradeOut(Schema):
    id: int
    order_id: int
    instrument_id: int
    product: str
    side: str
    quantity: int
    price: Decimal
    broker_trade_id: str
    executed_at: datetime


class PositionOut(Schema):
    id: int
    instrument_id: int
    product: str
    net_quantity: int
    average_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    ltp: Decimal | None
    buy_quantity: int
    sell_quantity: int
    margin_blocked: Decimal


class HoldingOut(Schema):
    """A delivery holding at the account's broker, valued at the last quote (``ltp`` and what follows
    from it are null without one; ``close`` is the previous session's)."""

    instrument_id: int
    exchange: str
    tradingsymbol: str
    quantity: int
    t1_quantity: int
    average_price: Decimal
    ltp: Decimal | None
    close: Decimal | None
    invested: Decimal
    value: Decimal | None
    pnl: Decimal | None
    pnl_percent: Decimal | None
    day_change: Decimal | None
    day_change_percent: Decimal | None


class FundsOut(Schema):
    account_id: int
    opening_balance: Decimal
    realised_pnl: Decimal
    realised_today: Decimal
    margin_blocked: Decimal
    available: Decimal
