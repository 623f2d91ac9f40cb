"""manage.py backtest: the metrics table over stored candles, the trade list as CSV, clear refusals."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.strategies.backtest_world import EMA_PARAMS, infy_with_candles

pytestmark = pytest.mark.django_db


def backtest(*extra: str) -> str:
    out = StringIO()
    call_command(
        "backtest",
        "--strategy",
        "ema_crossover",
        "--params",
        json.dumps(EMA_PARAMS),
        "--symbol",
        "NSE:INFY",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-02",
        *extra,
        stdout=out,
    )
    return out.getvalue()


def test_it_prints_the_metrics_table_and_writes_the_trades(tmp_path):
    infy_with_candles()
    path = tmp_path / "trades.csv"
    text = backtest("--csv-trades", str(path))
    rows = dict(line.split(None, 1) for line in text.splitlines() if line and not line.startswith("3 trades"))
    assert rows["net_pnl"].strip() == "811.48"
    assert rows["charges"].strip() == "48.52"
    assert "3 trades written" in text
    assert path.read_text().splitlines()[0].startswith("leg,instrument_id,direction")
    assert len(path.read_text().splitlines()) == 4


def test_settings_change_the_fills():
    infy_with_candles()
    text = backtest("--exchange-settings", json.dumps({"charges": {"enabled": False}, "fill_mode": "close"}))
    assert "net_pnl              860.00" in text


def test_a_symbol_without_candles_or_bad_json_is_a_clear_error():
    with pytest.raises(CommandError, match="backtest_invalid: NSE:INFY is not in the symbol master"):
        backtest()
    infy_with_candles()
    with pytest.raises(CommandError, match="take JSON"):
        backtest("--exchange-settings", "{nope")
