"""Fixtures for sweeps and the backtest pages over stored candles (tests/strategies/backtest_world.py): the
hand-worked INFY day as an instrument's 1-minute candles, and an EMA-crossover definition trading it."""

from __future__ import annotations

from datetime import date

import pytest

from tests.strategies.backtest_world import ema_definition, infy_with_candles

DAY = date(2026, 3, 2)


@pytest.fixture
def infy(db):
    return infy_with_candles()


@pytest.fixture
def ema(world, infy):
    return ema_definition(world)
