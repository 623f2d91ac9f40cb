"""Evaluate a running deployment at its latest stored bar, as the runtime's bar-close task does, from a
``manage.py shell`` beside a served standalone terminal (used by tests/e2e/test_strategies_e2e.py).

The bar-close evaluation (Celery beat each minute, on market days inside the deployment's schedule)
cannot be waited for in a test that may run on a Sunday; this drives the same steps for one bar: the
strategy run rebuilt from the deployment's kind, parameters and saved state, the latest 1-minute
candle the simulated feed stored handed to ``on_bar``, and the intents placed through
``deployment_apply`` with ``source="strategy"``. In standalone mode the last quotes live in the
server process's memory, so this process first stores the bar's close as its instrument's quote for
the paper exchange to fill against.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from marketdata.models import Candle, Instrument
from marketdata.quotes import DepthLevel, Quote, set_quotes
from strategies.contract import Bar
from strategies.engine import StrategyRun
from strategies.models import Deployment, DeploymentMark
from strategies.selectors import deployment_pnl
from strategies.services.execution import deployment_apply


class SymbolMaster:
    """The symbol master read from the database (the strategy contract's ``Instruments``)."""

    def lookup(self, exchange: str, symbol: str) -> int | None:
        return Instrument.objects.filter(exchange=exchange, tradingsymbol=symbol).values_list("pk", flat=True).first()

    def lot_size(self, instrument_id: int) -> int:
        return Instrument.objects.get(pk=instrument_id).lot_size

    def options(self, underlying, *, on):
        return []


def evaluate_latest_bar(deployment_id: int, *, wait: float = 60.0) -> list[str]:
    """Evaluate the deployment at its instrument's latest stored 1-minute bar; return the outcomes."""
    deployment = Deployment.objects.get(pk=deployment_id)
    run = StrategyRun(kind=deployment.kind, params=deployment.params, instruments=SymbolMaster())
    now = timezone.now()
    instrument_ids = run.subscriptions(now)
    deadline = time.monotonic() + wait
    candle = None
    while candle is None:
        candle = Candle.objects.filter(instrument_id__in=instrument_ids).order_by("-ts").first()
        if candle is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"no bar stored for {instrument_ids}")
            time.sleep(1)
    bar = Bar(
        instrument_id=candle.instrument_id,
        ts=candle.ts,
        open=candle.open,
        high=candle.high,
        low=candle.low,
        close=candle.close,
        volume=candle.volume,
        timeframe=1,
    )
    tick = Instrument.objects.get(pk=candle.instrument_id).tick_size
    set_quotes(
        [
            Quote(
                instrument_id=candle.instrument_id,
                ltp=candle.close,
                ts=now,
                bid=candle.close - tick,
                ask=candle.close + tick,
                bids=(DepthLevel(candle.close - tick, 10_000),),
                asks=(DepthLevel(candle.close + tick, 10_000),),
            )
        ]
    )
    intents = run.start(bar.ts + timedelta(minutes=1)).intents + run.on_bar(bar).intents
    placed = deployment_apply(deployment=deployment, intents=intents, source="strategy")
    Deployment.objects.filter(pk=deployment.pk).update(state=run.snapshot(), last_bar_ts=bar.ts)
    # The equity marks the runtime writes each minute: flat when it started, then marked to this quote.
    started = (deployment.started_at or now).replace(second=0, microsecond=0)
    DeploymentMark.objects.get_or_create(deployment=deployment, ts=started, defaults={"pnl": Decimal(0)})
    DeploymentMark.objects.update_or_create(
        deployment=deployment,
        ts=max(now.replace(second=0, microsecond=0), started + timedelta(minutes=1)),
        defaults={"pnl": deployment_pnl(deployment=deployment).total},
    )
    return [f"{row.side} {row.quantity} {row.status} order={row.order_id} {row.message}" for row in placed]
