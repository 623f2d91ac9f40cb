"""What the tests of running deployments share: small registered strategies, running deployments on the
trading world's paper account, stored 1-minute bars and ticks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from marketdata.candles import Bar as StoredBar
from marketdata.services import candle_upsert_many
from strategies import exits, runtime
from strategies.contract import Bar, Context, Fill, Params, Strategy, Tick
from strategies.models import Deployment, DeploymentAccount, StrategyDefinition
from strategies.registry import register, registered

# A Monday in session: the bar 10:00-10:01 IST closes at 10:01 IST (04:31 UTC).
BAR_TS = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
CLOSE = BAR_TS + timedelta(minutes=1)


class EveryBarParams(Params):
    instrument_id: int
    quantity: int = 1
    crash_on_bar: bool = False
    pause_file: str = ""


class BuyWhenFlat(Strategy):
    """Buys ``quantity`` on a bar while flat; counts its bars and fills in ``ctx.state``; raises on a bar when
    ``crash_on_bar``."""

    name = "test_buy_when_flat"
    Params = EveryBarParams
    drive = "bar"

    def instruments(self, ctx: Context) -> list[int]:
        return [self.params.instrument_id]

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if self.params.crash_on_bar:
            raise RuntimeError("the strategy's own bug")
        ctx.state["bars"] = ctx.state.get("bars", 0) + 1
        if ctx.position("long") == 0:
            ctx.buy("long", bar.instrument_id, self.params.quantity, reason="flat")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        ctx.state["fills"] = ctx.state.get("fills", 0) + 1
        ctx.note(f"filled {fill.side} {fill.quantity} {fill.leg}")


class TickParams(Params):
    instrument_id: int
    above: Decimal


class BuyAbove(Strategy):
    """Tick-driven: buys one when the price trades above ``above`` while flat."""

    name = "test_buy_above"
    Params = TickParams
    drive = "tick"

    def instruments(self, ctx: Context) -> list[int]:
        return [self.params.instrument_id]

    def on_tick(self, ctx: Context, tick: Tick) -> None:
        ctx.state["ticks"] = ctx.state.get("ticks", 0) + 1
        if ctx.position("long") == 0 and tick.ltp > self.params.above:
            ctx.buy("long", tick.instrument_id, 1)


for _cls in (BuyWhenFlat, BuyAbove):
    if _cls.name not in registered():
        register(_cls)


@pytest.fixture(autouse=True)
def _fresh_runtime():
    runtime.runs.clear()
    exits.marks._last.clear()
    yield
    runtime.runs.clear()


def deploy(world, *, kind: str = "test_buy_when_flat", params: dict | None = None, multiplier: int = 1, **fields):
    """A running deployment of ``kind`` on the world's paper account (rows written as the lifecycle
    services leave them once started)."""
    params = params if params is not None else {"instrument_id": world.equity.pk}
    definition, _ = StrategyDefinition.objects.get_or_create(
        organisation=world.org, name=f"{kind} definition", defaults={"kind": kind, "params": params}
    )
    fields.setdefault("start_time", time(9, 15))
    fields.setdefault("end_time", time(15, 30))
    fields.setdefault("square_off_time", None)
    fields.setdefault("status", Deployment.Status.RUNNING)
    deployment = Deployment.objects.create(
        organisation=world.org,
        definition=definition,
        name=f"{kind} {Deployment.objects.count() + 1}",
        kind=kind,
        params=params,
        mode=Deployment.Mode.PAPER,
        started_at=BAR_TS - timedelta(hours=1),
        **fields,
    )
    DeploymentAccount.objects.create(deployment=deployment, account=world.account, multiplier=multiplier)
    return deployment


def store_bar(instrument, ts: datetime, close: str, *, volume: int = 100) -> None:
    price = Decimal(close)
    candle_upsert_many(bars=[StoredBar(instrument.pk, ts, price, price, price, price, volume, 0)])


def store_history(instrument, *, before: datetime, minutes: int, close: str = "1000") -> None:
    price = Decimal(close)
    candle_upsert_many(
        bars=[
            StoredBar(instrument.pk, before - timedelta(minutes=n), price, price, price, price, 10, 0)
            for n in range(minutes, 0, -1)
        ]
    )


ROOT = Path(__file__).resolve().parents[2]
