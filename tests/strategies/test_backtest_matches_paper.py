"""The same strategy and parameters give the same trades in a backtest and on the paper exchange.

The hand-worked INFY day (fixtures/infy_2026-03-02.csv) is stored as candles; an EMA-crossover deployment
on the world's paper account is evaluated at each 5-minute bar close by the runtime (``evaluate_bar``, which
places its intents through ``deployment_apply`` and the order system), with the quote set beforehand to the
next minute's open: the price a market order placed at that close meets. The backtest of the same
definition with ``fill_mode="next_open"`` and the paper exchange's slippage must fill the same orders at the
same prices, both through ``brokers.matching``.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

import pytest

from brokers.charges import ChargeSchedule
from marketdata.hours import IST
from orders.models import Trade
from strategies import runtime
from strategies.backtest.engine import BacktestSettings, InstrumentSpec, run_backtest
from strategies.engine import aggregate
from strategies.models import Deployment, DeploymentAccount
from tests.strategies.backtest_world import EMA_PARAMS, ema_definition, infy_with_candles
from tests.strategies.harness import load_bars
from tests.strategies.runtime_world import _fresh_runtime

__all__ = ["_fresh_runtime"]
SLIPPAGE_BPS = 5


@pytest.mark.django_db(transaction=True)
def test_a_paper_deployment_over_the_replayed_bars_makes_the_backtests_trades(world, settings):
    settings.PAPER_SLIPPAGE_BPS = SLIPPAGE_BPS
    infy = infy_with_candles()
    definition = ema_definition(world)
    deployment = Deployment.objects.create(
        organisation=world.org,
        definition=definition,
        name="EMA on paper",
        kind=definition.kind,
        params=definition.params,
        mode=Deployment.Mode.PAPER,
        status=Deployment.Status.RUNNING,
        start_time=time(9, 15),
        end_time=time(15, 30),
        square_off_time=None,
    )
    DeploymentAccount.objects.create(deployment=deployment, account=world.account, multiplier=1)

    minutes = load_bars("infy_2026-03-02.csv", {"INFY": infy.pk})
    opens = {bar.ts: bar.open for bar in minutes}
    for bar in aggregate(minutes, 5):
        close = bar.ts + timedelta(minutes=5)
        if close in opens:  # the next minute's open is what a market order placed now meets
            world.quote(infy, opens[close], tick=False)
        runtime.evaluate_bar(deployment_id=deployment.pk, bar_ts=bar.ts)
    paper = [
        (trade.side, trade.quantity, trade.price)
        for trade in Trade.objects.filter(order__account=world.account).order_by("pk")
    ]

    settings_ = BacktestSettings(slippage_bps=SLIPPAGE_BPS, charges=ChargeSchedule.none(), mis_square_off=None)
    spec = InstrumentSpec(infy.pk, "NSE", "INFY", tick_size=infy.tick_size)
    result = run_backtest(kind="ema_crossover", params=EMA_PARAMS, instruments=[spec], bars=minutes, settings=settings_)
    backtest = [(f.side, f.quantity, f.price) for f in result.fills]

    assert len(backtest) == 6
    assert paper == backtest
    assert [f.ts.astimezone(IST).strftime("%H:%M") for f in result.fills] == [
        "11:10", "12:00", "12:00", "13:50", "13:50", "15:15",
    ]  # fmt: skip
    assert backtest[0] == ("SELL", 10, Decimal("1512.20"))  # 1513 less 5 bps (0.7565), down to a tick
