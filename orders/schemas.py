"""Shapes of the order API. They check types only; every business rule lives in the services."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from ninja import Field, Schema
from pydantic import BaseModel


class OrderIn(Schema):
    account_id: int
    instrument_id: int
    side: str = Field(description="BUY or SELL")
    quantity: int
    order_type: str = Field(description="MARKET, LIMIT, SL or SL-M")
    product: str = Field(description="CNC, MIS or NRML")
    validity: str = "DAY"
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    tag: str = Field("", max_length=40)
    strategy: str = Field("", max_length=64)
    algo_id: str = Field("", max_length=40)


class ModifyIn(BaseModel):
    """Every field is optional, so the body must be a JSON object: a ninja ``Schema`` would read a list
    or a number as an object with no fields set."""

    quantity: int | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    order_type: str | None = None


class BasketIn(Schema):
    orders: list[OrderIn] = Field(..., min_length=1, max_length=50)


class ClosePositionIn(Schema):
    account_id: int
    instrument_id: int
    product: str


class KillSwitchIn(Schema):
    scope: str = Field(description="global, organisation, account or user")
    target_id: int | None = None
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
    instrument_id: int
    quantity: int
    average_price: Decimal


class FundsOut(Schema):
    account_id: int
    opening_balance: Decimal
    realised_pnl: Decimal
    realised_today: Decimal
    margin_blocked: Decimal
    available: Decimal
