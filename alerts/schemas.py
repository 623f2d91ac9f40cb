"""Shapes of the alerts API. They check shape only: every value is checked by
alerts.services.alert_clean, which names each refused field with its own code."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ninja import Field, Schema
from pydantic import BaseModel, ConfigDict

# Loose on purpose: "-5", "abc" or 2.5 reach alert_clean and are refused there by field and code.
Number = int | Decimal | str | None
Flag = bool | str | None


class AlertIn(BaseModel):
    """An alert to create, or every field of one to replace."""

    model_config = ConfigDict(extra="allow")  # unknown names are refused by alert_clean, by name

    instrument: Number = Field(None, description="The instrument's id (GET /api/marketdata/instruments).")
    condition: str | None = Field(
        None,
        description="ltp_above, ltp_below, change_above, change_below, cross_up, cross_down, ma_cross_up or "
        "ma_cross_down.",
    )
    level: Number = Field(None, description="A price above zero; for change_*, a % (above -100).")
    average: str | None = Field(None, description="sma or ema, for ma_cross_*.")
    average_minutes: Number = Field(None, description="The average's length in 1-minute bars (2 to 375).")
    repeat: str | None = Field(None, description="once (default) or rearm.")
    cooldown_seconds: Number = Field(None, description="Re-arming alerts: seconds between firings (10 or more).")
    note: str | None = None
    notify_email: Flag = None
    notify_telegram: Flag = None
    telegram_chat_id: str | None = Field(None, description="Blank: the organisation's chat.")
    account: Number = Field(None, description="An account to place the alert trigger order on (trade access).")
    order_side: str | None = Field(None, description="BUY or SELL.")
    order_lots: Number = None
    order_type: str | None = Field(None, description="MARKET (default) or LIMIT.")
    order_product: str | None = Field(None, description="CNC, MIS (default) or NRML.")
    order_price: Number = Field(None, description="The limit price of a LIMIT order.")


class FiringOut(Schema):
    id: int
    fired_at: datetime
    ltp: Decimal
    message: str
    order_result: str
    order_id: int | None
    order_message: str


class AlertOut(Schema):
    id: int
    instrument_id: int
    condition: str
    level: Decimal | None
    average: str
    average_minutes: int | None
    repeat: str
    cooldown_seconds: int
    note: str
    notify_email: bool
    notify_telegram: bool
    telegram_chat_id: str
    account_id: int | None
    order_side: str
    order_lots: int | None
    order_type: str
    order_product: str
    order_price: Decimal | None
    state: str
    fired_count: int
    last_fired_at: datetime | None
    created_at: datetime


class TelegramIn(BaseModel):
    token: str = Field(description="The bot token @BotFather gave; verified with getMe before it is saved.")
    chat_id: str = Field("", description="The chat alerts go to unless an alert names its own.")


class TelegramOut(Schema):
    bot_username: str
    chat_id: str
    updated_at: datetime
