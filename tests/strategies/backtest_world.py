"""Stored candles for backtests: the hand-worked INFY day (fixtures/infy_2026-03-02.csv) as an instrument's
1-minute candles, and an EMA-crossover definition on it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from marketdata.models import Candle, Instrument
from marketdata.services import candle_partitions_ensure
from strategies.services import strategy_create
from tests.strategies.harness import load_bars

EMA_PARAMS = {
    "instrument": {"exchange": "NSE", "symbol": "INFY"},
    "timeframe": 5,
    "fast": 3,
    "slow": 8,
    "quantity": 10,
    "exit_at": "15:15",
    "mode": "long_short",
}


def infy_with_candles() -> Instrument:
    infy = Instrument.objects.create(
        exchange="NSE",
        segment="NSE",
        tradingsymbol="INFY",
        exchange_token="408065",
        instrument_type="EQ",
        lot_size=1,
        tick_size=Decimal("0.05"),
    )
    candle_partitions_ensure(months=[date(2026, 3, 1)])
    Candle.objects.bulk_create(
        Candle(
            instrument=infy,
            ts=bar.ts,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
        )
        for bar in load_bars("infy_2026-03-02.csv", {"INFY": infy.pk})
    )
    return infy


def ema_definition(world, **overrides):
    return strategy_create(
        actor=world.trader,
        organisation=world.org,
        name="EMA 3/8",
        kind="ema_crossover",
        params=EMA_PARAMS | overrides,
    )
