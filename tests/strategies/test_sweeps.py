"""Parameter sweeps: the grid checked and expanded, every combination validated, oversize grids refused
before they start, and results ranked by a metric."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ApplicationError
from strategies.errors import StrategyInvalid, StrategyUnknown, SweepInvalid, SweepTooLarge
from strategies.services.sweeps import MAX_KEYS, sweep_grid_expand, sweep_grid_size, sweep_rank

EMA = {"instrument": {"exchange": "NSE", "symbol": "RELIANCE"}, "quantity": 1, "fast": 9, "slow": 21}


def test_a_grid_expands_into_every_combination_merged_over_the_base_params():
    points = sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid={"fast": [5, 9], "slow": [21, 34, 55]})
    assert [(p.values["fast"], p.values["slow"]) for p in points] == [
        (5, 21), (5, 34), (5, 55), (9, 21), (9, 34), (9, 55),
    ]  # fmt: skip
    assert [p.index for p in points] == list(range(6))
    assert points[4].params["fast"] == 9 and points[4].params["slow"] == 34
    assert points[4].params["instrument"] == {"exchange": "NSE", "symbol": "RELIANCE"}
    assert points[4].params["timeframe"] == 5  # the schema's defaults filled in


def test_a_dotted_key_varies_a_field_inside_an_object_parameter():
    points = sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid={"instrument.symbol": ["INFY", "TCS"]})
    assert [p.params["instrument"] for p in points] == [
        {"exchange": "NSE", "symbol": "INFY"},
        {"exchange": "NSE", "symbol": "TCS"},
    ]
    assert EMA["instrument"]["symbol"] == "RELIANCE"  # the base is not changed


def test_every_combination_is_validated_and_the_first_bad_one_is_named_with_its_field():
    with pytest.raises(StrategyInvalid) as refused:
        sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid={"fast": [5, 30], "slow": [21, 34]})
    assert refused.value.status == 422 and refused.value.code == "strategy_invalid"
    assert refused.value.extra["field"] == "fast"
    assert refused.value.extra["combination"] == {"fast": 30, "slow": 21}
    assert "Combination 3 (fast=30, slow=21)" in refused.value.message


def test_a_value_of_the_wrong_type_is_refused_naming_the_field():
    with pytest.raises(StrategyInvalid) as refused:
        sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid={"timeframe": [5, 7]})
    assert refused.value.extra["field"] == "timeframe"


def test_an_unknown_strategy_kind_is_refused():
    with pytest.raises(StrategyUnknown):
        sweep_grid_expand(kind="no_such", base_params={}, grid={"fast": [1]})


def test_a_grid_over_the_maximum_is_refused_from_its_size_alone_naming_the_size(settings):
    settings.STRATEGIES_SWEEP_MAX_RUNS = 500
    grid = {"fast": list(range(1, 30)), "slow": list(range(30, 60))}  # 29 x 30 = 870
    with pytest.raises(SweepTooLarge) as refused:
        sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid=grid)
    assert refused.value.status == 422 and refused.value.code == "sweep_too_large"
    assert refused.value.extra == {"field": "grid", "runs": 870, "max_runs": 500}
    assert "870" in refused.value.message and "500" in refused.value.message


def test_a_huge_grid_is_refused_without_building_its_combinations():
    grid = {f"p{i}": list(range(100)) for i in range(MAX_KEYS)}  # 10**16 combinations
    with pytest.raises(SweepTooLarge) as refused:
        sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid=grid, max_runs=500)
    assert refused.value.extra["runs"] == 100**MAX_KEYS


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ([1, 2], "grid"),
        ({}, "grid"),
        ("fast", "grid"),
        (None, "grid"),
        ({"fast": []}, "grid.fast"),
        ({"fast": 5}, "grid.fast"),
        ({"fast": [5, 5]}, "grid.fast"),
        ({"fast": [1, 1.0]}, "grid.fast"),
        ({"Fast": [5]}, "grid.Fast"),
        ({"a..b": [5]}, "grid.a..b"),
        ({"a.b.c.d": [5]}, "grid.a.b.c.d"),
        ({"fast": ["a\x00b"]}, "grid.fast"),
        ({"fast": ["\ud800"]}, "grid.fast"),
        ({"fast": [float("nan")]}, "grid.fast"),
        ({"\ud800": [1]}, "grid"),
        ({f"p{i}": [1] for i in range(MAX_KEYS + 1)}, "grid"),
    ],
)
def test_a_malformed_grid_is_refused_naming_where(grid, field):
    with pytest.raises(SweepInvalid) as refused:
        sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid=grid)
    assert refused.value.status == 422 and refused.value.code == "sweep_invalid"
    assert refused.value.extra["field"] == field


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)
grids = st.one_of(
    st.dictionaries(
        st.sampled_from(["fast", "slow", "timeframe", "quantity", "lots", "mode", "bogus", "instrument.symbol"]),
        st.lists(json_values, max_size=6),
        max_size=5,
    ),
    st.dictionaries(st.text(max_size=6), st.lists(json_values, max_size=3), max_size=3),
    json_values,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid=grids)
def test_any_grid_either_expands_into_valid_params_or_is_refused_with_a_4xx(grid):
    try:
        points = sweep_grid_expand(kind="ema_crossover", base_params=EMA, grid=grid, max_runs=200)
    except (SweepInvalid, SweepTooLarge, StrategyInvalid) as refused:
        assert 400 <= refused.status < 500 and refused.extra.get("field")
        return
    assert len(points) == sweep_grid_size(grid=grid) == math.prod(len(v) for v in grid.values())
    for point in points:
        assert point.params["fast"] < point.params["slow"]


def test_results_are_ranked_best_first_by_the_chosen_metric_with_unmeasured_runs_last():
    results = [
        ("a", {"net_pnl": "100.5", "max_drawdown": "20"}),
        ("b", {"net_pnl": None, "max_drawdown": None}),
        ("c", {"net_pnl": "250", "max_drawdown": "50"}),
        ("d", {"net_pnl": "-10", "max_drawdown": "5"}),
    ]
    assert sweep_rank(results=results, metric="net_pnl") == [
        ("c", Decimal("250")), ("a", Decimal("100.5")), ("d", Decimal("-10")), ("b", None),
    ]  # fmt: skip
    assert [item for item, _ in sweep_rank(results=results, metric="max_drawdown")] == ["d", "a", "c", "b"]


def test_ranking_by_an_unknown_metric_is_refused_naming_the_field():
    with pytest.raises(SweepInvalid) as refused:
        sweep_rank(results=[], metric="luck")
    assert refused.value.extra["field"] == "metric"


# --- recorded sweeps and their tasks (the database) ----------------------------------------------------------
from audit.models import AuditEvent  # noqa: E402
from strategies import selectors, tasks  # noqa: E402
from strategies.errors import BacktestForbidden, BacktestNoData  # noqa: E402
from strategies.models import BacktestRun, BacktestSweep  # noqa: E402
from strategies.services import sweeps  # noqa: E402
from strategies.services.sweeps import sweep_create  # noqa: E402
from tests.strategies.sweep_world import DAY  # noqa: E402

GRID = {"fast": [3, 5], "slow": [8, 13]}


def _sweep(world, ema, **overrides):
    kwargs = {"grid": GRID, "metric": "net_pnl", "instruments": ["NSE:INFY"], "start": DAY, "end": DAY}
    return sweep_create(actor=world.trader, definition=ema, **(kwargs | overrides))


@pytest.mark.django_db
def test_a_sweep_records_one_queued_run_per_combination_and_sends_their_tasks_on_commit(
    world, ema, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(sweeps, "send_run", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        sweep = _sweep(world, ema)
    runs = list(sweep.runs.order_by("pk"))
    assert [(r.params["fast"], r.params["slow"]) for r in runs] == [(3, 8), (3, 13), (5, 8), (5, 13)]
    assert {r.status for r in runs} == {BacktestRun.Status.QUEUED}
    assert sent == [r.pk for r in runs]
    assert sweep.status == BacktestSweep.Status.QUEUED and sweep.metric == "net_pnl"
    assert AuditEvent.objects.filter(action="strategy.sweep.created", target_id=str(sweep.pk)).exists()


@pytest.mark.django_db
def test_nothing_is_sent_when_the_sweep_is_refused(world, ema, django_capture_on_commit_callbacks, settings):
    settings.STRATEGIES_SWEEP_MAX_RUNS = 3
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(SweepTooLarge) as refused:
        _sweep(world, ema)
    assert refused.value.extra["runs"] == 4 and refused.value.extra["max_runs"] == 3
    assert callbacks == [] and not BacktestSweep.objects.exists() and not BacktestRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        ({"grid": {"fast": [3, 9]}}, StrategyInvalid, "fast"),  # fast 9 >= slow 8
        ({"grid": {"bogus": [1]}}, StrategyInvalid, "bogus"),
        ({"metric": "luck"}, SweepInvalid, "metric"),
        ({"instruments": ["NSE:NOPE"]}, None, "instruments.0"),
        ({"start": "2026-02-01", "end": "2026-02-03"}, BacktestNoData, "start"),
    ],
)
def test_a_sweep_with_bad_input_is_refused_naming_the_field_and_nothing_is_written(world, ema, overrides, error, field):
    with pytest.raises(ApplicationError) as refused:
        _sweep(world, ema, **overrides)
    assert error is None or isinstance(refused.value, error)
    assert refused.value.status == 422 and refused.value.extra["field"] == field
    assert not BacktestSweep.objects.exists() and not BacktestRun.objects.exists()


@pytest.mark.django_db
def test_a_viewer_may_not_start_a_sweep(world, ema):
    with pytest.raises(BacktestForbidden):
        sweep_create(actor=world.viewer, definition=ema, grid=GRID, instruments=["NSE:INFY"], start=DAY, end=DAY)
    assert not BacktestSweep.objects.exists()


@pytest.mark.django_db
def test_each_run_runs_once_the_sweep_counts_its_progress_and_ranks_the_results(world, ema):
    sweep = _sweep(world, ema)
    runs = list(sweep.runs.order_by("pk"))
    assert selectors.sweep_progress(sweep_id=sweep.pk).percent == 0
    assert tasks.run_backtest(runs[0].pk) == "done"
    sweep.refresh_from_db()
    assert sweep.status == BacktestSweep.Status.RUNNING
    progress = selectors.sweep_progress(sweep_id=sweep.pk)
    assert (progress.total, progress.done, progress.queued, progress.percent) == (4, 1, 3, 25)

    first = BacktestRun.objects.get(pk=runs[0].pk)
    assert tasks.run_backtest(runs[0].pk) == "skipped"  # a redelivery of a finished run is a no-op
    assert BacktestRun.objects.get(pk=runs[0].pk).finished_at == first.finished_at

    for run in runs[1:]:
        assert tasks.run_backtest(run.pk) == "done"
    sweep.refresh_from_db()
    assert sweep.status == BacktestSweep.Status.DONE
    assert selectors.sweep_progress(sweep_id=sweep.pk).percent == 100
    finished = list(BacktestRun.objects.filter(sweep=sweep))
    ranked = sweep_rank(results=[(r.pk, r.result) for r in finished], metric="net_pnl")
    values = [value for _, value in ranked]
    assert values == sorted(values, reverse=True) and all(v is not None for v in values)
    assert {Decimal(r.result["net_pnl"]) for r in finished} == set(values)


@pytest.mark.django_db
def test_the_task_of_a_run_that_no_longer_exists_does_nothing(db):
    assert tasks.run_backtest(999_999) == "skipped"


@pytest.mark.django_db
def test_a_run_left_running_by_a_lost_worker_runs_again_only_past_the_time_limit(world, ema):
    from datetime import timedelta

    from django.utils import timezone

    from strategies.services.backtests import BACKTEST_TIME_LIMIT

    run = _sweep(world, ema).runs.order_by("pk").first()
    started = timezone.now() - timedelta(seconds=60)
    BacktestRun.objects.filter(pk=run.pk).update(status=BacktestRun.Status.RUNNING, started_at=started)
    assert tasks.run_backtest(run.pk) == "skipped"  # perhaps still running in another worker
    abandoned = timezone.now() - timedelta(seconds=BACKTEST_TIME_LIMIT + 60)
    BacktestRun.objects.filter(pk=run.pk).update(started_at=abandoned)
    assert tasks.run_backtest(run.pk) == "done"  # no worker may still run it: its redelivery runs it
    assert BacktestRun.objects.get(pk=run.pk).result["trades"] is not None
