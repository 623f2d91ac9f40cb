"""Backtest a strategy kind over the stored 1-minute candles and print its metrics.

    manage.py backtest --strategy ema_crossover --params '{"instrument": {"exchange": "NSE", "symbol": "INFY"},
        "quantity": 10}' --symbol NSE:INFY --from 2026-03-02 --to 2026-03-31 [--csv-trades trades.csv]

Nothing is stored: it runs the same checks and engine as ``backtest_create`` and ``backtest_run``.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from strategies.backtest.bars import stored_bars
from strategies.backtest.engine import run_backtest
from strategies.backtest.report import metrics, metrics_table, trades_csv
from strategies.services import backtest_prepare


class Command(BaseCommand):
    help = "Backtest a strategy over stored 1-minute candles and print the metrics table."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, help="the registered kind, e.g. ema_crossover")
        parser.add_argument("--params", default="{}", help="the parameters as a JSON object")
        parser.add_argument(
            "--symbol", action="append", required=True, help="EXCHANGE:SYMBOL (repeat for more instruments)"
        )
        parser.add_argument("--from", dest="start", required=True, help="first IST day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="last IST day, YYYY-MM-DD")
        parser.add_argument(
            "--exchange-settings",
            default="{}",
            help="the simulated exchange's settings (fill mode, slippage, charges) as JSON",
        )
        parser.add_argument("--csv-trades", default=None, help="write the trade list to this CSV file")

    def handle(self, *args, strategy, params, symbol, start, end, exchange_settings, csv_trades, **_):
        try:
            raw_params, raw_settings = json.loads(params), json.loads(exchange_settings)
        except json.JSONDecodeError as error:
            raise CommandError(f"--params and --exchange-settings take JSON: {error}") from None
        try:
            prepared = backtest_prepare(
                kind=strategy, params=raw_params, instruments=symbol, start=start, end=end, settings=raw_settings
            )
        except ApplicationError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        bars = stored_bars(
            instrument_ids=[spec.instrument_id for spec in prepared.instruments], start=prepared.start, end=prepared.end
        )
        result = run_backtest(
            kind=prepared.kind,
            params=prepared.params,
            instruments=prepared.instruments,
            bars=bars,
            settings=prepared.settings,
        )
        self.stdout.write(metrics_table(metrics(result)))
        if csv_trades:
            Path(csv_trades).write_text(trades_csv(result.trades), encoding="utf-8")
            self.stdout.write(f"{len(result.trades)} trades written to {csv_trades}")
        if result.error:
            raise CommandError(f"The strategy raised on {result.error_event}:\n{result.error}")
