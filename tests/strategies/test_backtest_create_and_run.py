"""backtest_create and backtest_run (strategies/services/backtests.py) over stored candles."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from strategies import tasks
from strategies.errors import (
    BacktestForbidden,
    BacktestInvalid,
    BacktestNoData,
    BacktestNotQueued,
    StrategyError,
    StrategyInvalid,
)
from strategies.models import BacktestRun
from strategies.services import backtest_create, backtest_prepare, backtest_run
from tests.strategies.backtest_world import EMA_PARAMS, ema_definition, infy_with_candles

pytestmark = pytest.mark.django_db


def create(world, definition, **overrides):
    fields = {"instruments": ["NSE:INFY"], "start": "2026-03-02", "end": "2026-03-02"} | overrides
    return backtest_create(actor=world.trader, definition=definition, **fields)


def test_a_backtest_of_a_definition_runs_over_the_stored_candles_and_stores_its_report(world):
    infy = infy_with_candles()
    run = create(world, ema_definition(world))
    assert run.status == "queued" and run.instruments == [infy.pk]
    run = backtest_run(run=run)
    assert run.status == "done" and run.progress == 100 and run.error == ""
    assert run.result["net_pnl"] == "811.48" and run.result["charges"] == "48.52"
    assert [t["direction"] for t in run.trades] == ["short", "long", "short"]
    assert run.equity[-1][1] == "1000811.48"
    assert run.result["monthly_returns"][0][0] == "2026-03"
    actions = list(
        AuditEvent.objects.filter(target_type="strategies.backtestrun", target_id=str(run.pk)).values_list(
            "action", flat=True
        )
    )
    assert actions == ["strategy.backtest.created", "strategy.backtest.finished"]


def test_a_run_runs_once(world):
    infy_with_candles()
    run = backtest_run(run=create(world, ema_definition(world)))
    with pytest.raises(BacktestNotQueued):
        backtest_run(run=run)


def test_parameters_that_fail_the_schema_are_refused_naming_the_field(world):
    infy_with_candles()
    with pytest.raises(StrategyInvalid) as caught:
        create(world, ema_definition(world), params={**ema_definition_params(), "fast": 50})
    assert caught.value.extra["field"] == "fast" and caught.value.status == 422
    assert not BacktestRun.objects.exists()


def ema_definition_params():
    return dict(EMA_PARAMS)


def test_a_date_range_without_candles_is_refused_with_a_clear_error(world):
    infy_with_candles()
    with pytest.raises(BacktestNoData) as caught:
        create(world, ema_definition(world), start="2026-04-01", end="2026-04-30")
    assert "NSE:INFY" in caught.value.message and caught.value.status == 422


@pytest.mark.parametrize(
    ("instruments", "field"),
    [(["NSE:NOPE"], "instruments.0"), ([], "instruments"), (["INFY\x00"], "instruments.0"), ([1.5], "instruments.0")],
)
def test_a_missing_or_malformed_instrument_is_refused_naming_it(world, instruments, field):
    infy_with_candles()
    with pytest.raises(BacktestInvalid) as caught:
        create(world, ema_definition(world), instruments=instruments)
    assert caught.value.extra["field"] == field and caught.value.status == 422


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"start": "2026-03-03", "end": "2026-03-02"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-02-30"}, "end"),
        ({"settings": {"slippage_bps": -1}}, "settings.slippage_bps"),
        ({"settings": {"fill_mode": "tomorrow"}}, "settings.fill_mode"),
        ({"settings": {"initial_capital": "1e400"}}, "settings.initial_capital"),
        ({"settings": ["x"]}, "settings"),
    ],
)
def test_bad_dates_and_settings_are_refused_naming_the_field(world, overrides, field):
    infy_with_candles()
    with pytest.raises(BacktestInvalid) as caught:
        create(world, ema_definition(world), **overrides)
    assert caught.value.extra["field"] == field


def test_a_viewer_may_not_run_backtests(world):
    infy_with_candles()
    definition = ema_definition(world)
    with pytest.raises(BacktestForbidden):
        backtest_create(
            actor=world.viewer, definition=definition, instruments=["NSE:INFY"], start="2026-03-02", end="2026-03-02"
        )


def test_a_strategy_that_raises_fails_the_run_with_its_traceback(world):
    infy_with_candles()
    definition = ema_definition(world, instrument={"exchange": "NSE", "symbol": "TCS"})  # not in the master
    run = backtest_run(run=create(world, definition))
    assert run.status == "failed"
    assert "LookupError: NSE:TCS is not in the symbol master" in run.error


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instruments=JSON, start=JSON | st.dates().map(str), end=JSON, exchange=JSON)
def test_hostile_instruments_dates_and_settings_get_a_422_naming_a_field_never_a_crash(
    world, instruments, start, end, exchange
):
    try:
        backtest_prepare(
            kind="ema_crossover", params=EMA_PARAMS, instruments=instruments, start=start, end=end, settings=exchange
        )
    except StrategyError as error:
        assert error.status == 422 and "field" in error.extra


def test_the_task_runs_a_queued_backtest_once(world):
    infy_with_candles()
    run = create(world, ema_definition(world))
    assert tasks.run_backtest(run.pk) == "done"
    assert tasks.run_backtest(run.pk) == "skipped"
