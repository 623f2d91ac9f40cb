"""Shapes of the strategies API. They check shape only: names, parameters (rule JSON), schedules and
limits are checked by the services, which name each refused field (422, ``extra["field"]``)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from ninja import Field, Schema
from pydantic import BaseModel, ConfigDict

MAX_ID = 2**63 - 1
# Loose on purpose where the service names the field: "-5" or 2.5 for a limit reaches the service
# and is refused there as deployment_invalid with the field, not as a bare schema error.
Number = int | Decimal | str | None


class _In(BaseModel):
    # A pydantic model rather than a ninja Schema: a Schema reads attributes of whatever it is given,
    # so a JSON list or number would pass as an empty object.
    model_config = ConfigDict(extra="forbid")


class DefinitionIn(_In):
    name: str = Field(description="Unique within the organisation, at most 100 characters.")
    kind: str = Field(description="A registered strategy: 'rule' or a built-in such as 'ema_crossover'.")
    params: dict[str, Any] = Field(default_factory=dict, description="Validated by the kind's schema.")
    description: str = ""


class DefinitionPatch(_In):
    """Fields not given keep their value. Deployments keep the parameters they were deployed with."""

    name: str | None = None
    params: dict[str, Any] | None = None
    description: str | None = None


class DefinitionOut(Schema):
    id: int
    name: str
    kind: str
    params: dict[str, Any]
    description: str
    created_at: datetime
    updated_at: datetime


class AccountIn(_In):
    account_id: int = Field(gt=0, le=MAX_ID)
    multiplier: int = Field(1, ge=1, le=1000)


class DeploymentIn(_In):
    definition_id: int = Field(gt=0, le=MAX_ID)
    name: str
    mode: str = Field(description="paper or live; a paper deployment trades only paper accounts.")
    accounts: list[AccountIn] = Field(min_length=1, max_length=50)
    algo_id: int | None = Field(None, gt=0, le=MAX_ID, description="An active algo id of the organisation.")
    start_time: time | None = Field(None, description="IST; default 09:15.")
    end_time: time | None = Field(None, description="IST; no new entries after it; default 15:30.")
    square_off_time: time | None = Field(None, description="IST; positions closed then; default 15:15, null: none.")
    max_loss: Number = None
    max_orders: Number = None
    max_open_positions: Number = None
    mtm_stop_loss: Number = None
    mtm_target: Number = None
    trailing_stop: Number = None
    webhook_allowed_ips: list[str] = Field(default_factory=list, max_length=20)


class ReasonIn(_In):
    reason: str = Field("", max_length=300)


class DeploymentAccountOut(Schema):
    account_id: int
    multiplier: int
    status: str


class DeploymentOut(Schema):
    id: int
    definition_id: int
    name: str
    kind: str
    params: dict[str, Any]
    mode: str
    status: str
    status_reason: str
    algo_id: str | None
    accounts: list[DeploymentAccountOut]
    start_time: time
    end_time: time
    square_off_time: time | None
    max_loss: Decimal | None
    max_orders: int | None
    max_open_positions: int | None
    mtm_stop_loss: Decimal | None
    mtm_target: Decimal | None
    trailing_stop: Decimal | None
    webhook_url: str
    webhook_allowed_ips: list[str]
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class WebhookSecretOut(Schema):
    """The new secret, shown this once (only its SHA-256 is kept)."""

    webhook_url: str
    secret: str


class PositionOut(Schema):
    account_id: int
    instrument_id: int
    product: str
    leg: str
    net_quantity: int
    average_price: Decimal
    realised_pnl: Decimal
    buy_quantity: int
    sell_quantity: int


class PnlOut(Schema):
    realised: Decimal
    unrealised: Decimal
    total: Decimal
    unpriced: list[int]


class DeploymentOrderOut(Schema):
    id: int
    account_id: int
    instrument_id: int
    side: str
    quantity: int
    filled_quantity: int
    average_price: Decimal | None
    order_type: str
    product: str
    status: str
    message: str
    tag: str
    algo_id: str
    source: str
    created_at: datetime


class EventOut(Schema):
    id: int
    kind: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class AlgoIdIn(_In):
    code: str
    description: str = ""


class AlgoIdOut(Schema):
    id: int
    code: str
    description: str
    is_active: bool
    created_at: datetime


# --- backtests and sweeps ----------------------------------------------------------------------------------
# Instruments, dates and settings are checked by the backtest service, which names the refused field
# (422 backtest_invalid): loose types here so a wrong one reaches it.
Instruments = list[str | int] | str | int
Day = date | str


class BacktestIn(_In):
    definition_id: int = Field(gt=0, le=MAX_ID)
    params: dict[str, Any] | None = Field(None, description="Overrides the definition's parameters; by its schema.")
    instruments: Instruments = Field(description='"EXCHANGE:SYMBOL" (e.g. "NSE:INFY") or instrument ids, 1 to 50.')
    start: Day = Field(description="The first IST day, YYYY-MM-DD.")
    end: Day = Field(description="The last IST day, YYYY-MM-DD (at most five years after start).")
    settings: dict[str, Any] | None = Field(
        None, description="The simulated exchange: fill_mode, slippage_bps, initial_capital, charges."
    )


class SweepIn(BacktestIn):
    grid: dict[str, Any] = Field(
        description='Parameter name (or dotted path) -> list of values, e.g. {"fast": [5, 9], "slow": [21, 34]}.'
    )
    metric: str = Field("sharpe", description="The report metric the runs are ranked by (sweep_invalid otherwise).")


class BacktestSummaryOut(Schema):
    id: int
    definition_id: int | None
    sweep_id: int | None
    kind: str
    params: dict[str, Any]
    instruments: list[int]
    start_date: date
    end_date: date
    settings: dict[str, Any]
    status: str
    progress: int
    result: dict[str, Any] = Field(description="The report's metrics (money as strings of rupees) once done.")
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BacktestOut(BacktestSummaryOut):
    equity: list[list[str]] = Field(description="[time (ISO 8601, UTC), equity, drawdown], at most 2,000 points.")
    trades: list[dict[str, Any]] = Field(description="The closed round trips (also as CSV at .../trades.csv).")


class MetricPairOut(Schema):
    metric: str
    a: Any
    b: Any


class CompareOut(Schema):
    a: BacktestSummaryOut
    b: BacktestSummaryOut
    metrics: list[MetricPairOut]


class SweepProgressOut(Schema):
    total: int
    queued: int
    running: int
    done: int
    failed: int
    percent: int


class RankedRunOut(Schema):
    rank: int | None = Field(description="1 for the best; null for a run without the metric (not finished).")
    backtest_id: int
    status: str
    params: dict[str, Any]
    value: Decimal | None


class SweepSummaryOut(Schema):
    id: int
    definition_id: int
    grid: dict[str, Any]
    metric: str
    status: str
    created_at: datetime
    progress: SweepProgressOut


class SweepOut(SweepSummaryOut):
    ranking: list[RankedRunOut]
