"""Shapes of the risk limits API. They check shape only: every value is checked by
rms.services.risk_limit_clean, which names each refused field with its own code."""

from __future__ import annotations

from decimal import Decimal

from ninja import Field, Schema
from pydantic import BaseModel, ConfigDict

# Loose on purpose: "-5", "lots" or 2.5 must reach risk_limit_clean and be refused there with their
# own code (limit_negative, limit_not_a_number, limit_not_whole), not as a schema error.
Number = int | Decimal | str | None
Codes = list[str] | str | None


class LimitsIn(BaseModel):
    """Limits to set on one scope. A field not given keeps its value; null (or "") clears it."""

    # A pydantic model rather than a ninja Schema: a Schema reads attributes of whatever it is given, so
    # a JSON list or number would pass as an empty object. Unknown names are let through so that
    # risk_limit_clean refuses them by name (limit_field_unknown).
    model_config = ConfigDict(extra="allow")

    max_order_quantity: Number = Field(None, description="Whole number of units per order.")
    max_order_value: Number = Field(None, description="Rupees per order, at most 2 decimals.")
    max_open_orders: Number = Field(None, description="Whole number of open orders at once.")
    max_daily_loss: Number = Field(None, description="Rupees: realised today plus MTM, at most 2 decimals.")
    max_orders_per_second: Number = Field(None, description="Whole number per account and exchange segment.")
    max_ltp_deviation_pct: Number = Field(None, description="% a limit price may be from LTP, at most 2 decimals.")
    allowed_exchanges: Codes = Field(None, description="Exchange codes such as NSE, NFO; [] or null: all.")
    allowed_products: Codes = Field(None, description="CNC, MIS, NRML; [] or null: all.")


class LimitValuesOut(Schema):
    """What one scope sets; null is no limit at this scope. Decimals are strings ("250000.50")."""

    max_order_quantity: int | None
    max_order_value: Decimal | None
    max_open_orders: int | None
    max_daily_loss: Decimal | None
    max_orders_per_second: int | None
    max_ltp_deviation_pct: Decimal | None
    allowed_exchanges: list[str] | None
    allowed_products: list[str] | None


class LimitScopeOut(Schema):
    scope: str = Field(description="organisation, account, user, or everyone (the platform's, read-only)")
    target_id: int | None = Field(description="The broker account's or member's id; null for the others.")
    label: str
    detail: str
    values: LimitValuesOut


class LimitsOut(Schema):
    organisation: LimitScopeOut
    accounts: list[LimitScopeOut]
    members: list[LimitScopeOut]
    everyone: LimitScopeOut
