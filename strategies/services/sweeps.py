"""Parameter sweeps: a grid of parameter values expanded into one backtest's parameters per combination,
every combination validated against the strategy's schema before anything runs, one ``BacktestRun`` per
combination run as its own Celery task (``strategies.tasks.run_backtest``), progress counted from the
sweep's runs, and results ranked by one metric. Also ``backtest_queue``: one backtest recorded and its
task sent once the transaction commits.

A grid is a JSON object whose keys are parameter names (a dotted path reaches into an object
parameter: ``"instrument.symbol"``) and whose values are non-empty lists of distinct JSON values, e.g.
``{"fast": [5, 9, 13], "slow": [21, 34]}``: six combinations, each merged over the definition's
parameters. A grid of more than ``settings.STRATEGIES_SWEEP_MAX_RUNS`` combinations is refused
(``SweepTooLarge``, 422, naming the size) from the lengths alone, before any combination is built.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from strategies.errors import BacktestForbidden, StrategyInvalid, SweepInvalid, SweepTooLarge
from strategies.models import BacktestRun, BacktestSweep, StrategyDefinition
from strategies.registry import validate_params
from strategies.services.access import WRITERS, require_role
from strategies.services.backtests import backtest_create, backtest_prepare

MAX_KEYS = 8  # parameters one grid varies
MAX_DEPTH = 3  # parts of a dotted path
_KEY = re.compile(r"^[a-z_][a-z0-9_]{0,39}(\.[a-z_][a-z0-9_]{0,39}){0,2}$")  # up to MAX_DEPTH parts

# The report's metrics (strategies.backtest.report.metrics) a sweep ranks by, and whether larger is better.
RANK_METRICS: dict[str, bool] = {
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "net_pnl": True,
    "total_return": True,
    "cagr": True,
    "win_rate": True,
    "profit_factor": True,
    "expectancy": True,
    "trades": True,
    "max_drawdown": False,
    "max_drawdown_pct": False,
    "max_drawdown_days": False,
}


@dataclass(frozen=True)
class SweepPoint:
    """One combination: its position in the grid, the values it sets and the full validated parameters."""

    index: int
    values: dict[str, Any]
    params: dict[str, Any]


def _json_safe(value: Any) -> bool:
    """Whether ``value`` survives a JSON column: no NUL, no lone surrogates, no NaN or infinity."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        return False
    return "\x00" not in text and "\\u0000" not in text


def sweep_grid_size(*, grid: object) -> int:
    """The number of combinations in ``grid`` after checking its shape.

    Raises SweepInvalid (422) naming the key when the grid is not an object of 1..MAX_KEYS parameter
    paths, each a non-empty list of distinct JSON values.
    """
    if not isinstance(grid, dict) or not grid:
        raise SweepInvalid("Give the grid as an object of parameter names to lists of values.", extra={"field": "grid"})
    if len(grid) > MAX_KEYS:
        raise SweepInvalid(
            f"A sweep varies at most {MAX_KEYS} parameters; this grid varies {len(grid)}.",
            extra={"field": "grid", "max_keys": MAX_KEYS},
        )
    for key, values in grid.items():
        shown = key if isinstance(key, str) and _json_safe(key) else "grid"
        if not isinstance(key, str) or not _KEY.match(key):
            raise SweepInvalid(
                "A grid key is a parameter name, or a dotted path into one (like instrument.symbol).",
                extra={"field": f"grid.{shown}" if shown != "grid" else "grid"},
            )
        if not isinstance(values, list) or not values:
            raise SweepInvalid(f"{key}: give a non-empty list of values.", extra={"field": f"grid.{key}"})
        if not _json_safe(values):
            raise SweepInvalid(f"{key}: a value is not storable JSON.", extra={"field": f"grid.{key}"})
        seen = {json.dumps(value, sort_keys=True) for value in values}
        if len(seen) != len(values):
            raise SweepInvalid(f"{key}: each value may appear once.", extra={"field": f"grid.{key}"})
    return math.prod(len(values) for values in grid.values())


def _set_path(params: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = params
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[last] = copy.deepcopy(value)


def sweep_grid_expand(
    *, kind: str, base_params: Mapping[str, Any], grid: object, max_runs: int | None = None
) -> list[SweepPoint]:
    """Every combination of ``grid`` merged over ``base_params`` and validated by ``kind``'s schema, in
    grid order (the last key varying fastest).

    Raises SweepInvalid for a malformed grid, SweepTooLarge when it has more combinations than
    ``max_runs`` (default ``settings.STRATEGIES_SWEEP_MAX_RUNS``), StrategyUnknown for an unknown kind,
    and StrategyInvalid (422) naming the field and the combination for the first one the schema refuses.
    """
    size = sweep_grid_size(grid=grid)
    limit = settings.STRATEGIES_SWEEP_MAX_RUNS if max_runs is None else max_runs
    if size > limit:
        raise SweepTooLarge(
            f"This grid has {size} combinations; a sweep runs at most {limit}.",
            extra={"field": "grid", "runs": size, "max_runs": limit},
        )
    assert isinstance(grid, dict)
    keys = list(grid)
    points: list[SweepPoint] = []
    seen: dict[str, int] = {}
    for index, combination in enumerate(product(*(grid[key] for key in keys))):
        values = dict(zip(keys, combination, strict=True))
        params = copy.deepcopy(dict(base_params))
        for key, value in values.items():
            _set_path(params, key, value)
        try:
            validated = validate_params(kind, params)
        except StrategyInvalid as error:
            raise StrategyInvalid(
                f"Combination {index + 1} ({_describe(values)}): {error.message}",
                extra=error.extra | {"combination": values, "index": index},
            ) from None
        final = validated.model_dump(mode="json")
        # Values that differ as JSON but not to the schema (1 and 1.0) would run one backtest twice.
        fingerprint = json.dumps(final, sort_keys=True)
        if fingerprint in seen:
            raise SweepInvalid(
                f"Combinations {seen[fingerprint] + 1} and {index + 1} ({_describe(values)}) give the same parameters.",
                extra={"field": f"grid.{keys[-1]}", "combination": values, "index": index},
            )
        seen[fingerprint] = index
        points.append(SweepPoint(index=index, values=values, params=final))
    return points


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in values.items())


def _metric(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def sweep_rank(*, results: Iterable[tuple[Any, Mapping[str, Any]]], metric: str) -> list[tuple[Any, Decimal | None]]:
    """``results`` (each an item and its metrics) best first by ``metric``, with the value ranked on.

    Items lacking the metric (a run not finished, or one with no trades to measure) come last, in their
    given order. Raises SweepInvalid naming ``metric`` when it is not one of RANK_METRICS.
    """
    if metric not in RANK_METRICS:
        raise SweepInvalid(
            f"Rank by one of {', '.join(RANK_METRICS)}.", extra={"field": "metric", "choices": list(RANK_METRICS)}
        )
    larger_is_better = RANK_METRICS[metric]
    scored = [(item, _metric(metrics.get(metric))) for item, metrics in results]
    measured = [pair for pair in scored if pair[1] is not None]
    unmeasured = [pair for pair in scored if pair[1] is None]
    measured.sort(key=lambda pair: pair[1], reverse=larger_is_better)  # type: ignore[arg-type,return-value]
    return measured + unmeasured


RUN_BACKTEST_TASK = "strategies.tasks.run_backtest"  # sent by name: the tasks module imports these services


def _send(run_ids: list[int]) -> None:
    for run_id in run_ids:
        send_run(run_id)


def send_run(run_id: int) -> None:
    """Queue one run's task on the ``strategies`` queue (the route of ``strategies.tasks.*``)."""
    current_app.send_task(RUN_BACKTEST_TASK, args=[run_id])


def backtest_queue(
    *,
    actor,
    definition: StrategyDefinition,
    params: object = None,
    instruments: object,
    start: object,
    end: object,
    settings: object = None,
) -> BacktestRun:
    """``backtest_create`` (which checks and raises), its task sent to the ``strategies`` queue once the
    transaction commits; return the queued run."""
    with transaction.atomic():
        run = backtest_create(
            actor=actor,
            definition=definition,
            params=params,
            instruments=instruments,
            start=start,
            end=end,
            settings=settings,
        )
        transaction.on_commit(lambda: _send([run.pk]))
    return run


def sweep_create(
    *,
    actor,
    definition: StrategyDefinition,
    grid: object,
    metric: object = "sharpe",
    instruments: object,
    start: object,
    end: object,
    settings: object = None,
) -> BacktestSweep:
    """Record a sweep of ``definition`` over ``grid`` and one queued run per combination; their tasks are
    sent once the transaction commits. Return the sweep.

    Raises BacktestForbidden (403) unless the actor is an Owner, Admin or Trader of the organisation;
    SweepInvalid (a malformed grid, or ``metric`` not one of RANK_METRICS, naming the field), SweepTooLarge
    (more combinations than ``STRATEGIES_SWEEP_MAX_RUNS``, naming the size) and StrategyInvalid (a
    combination the schema refuses) before anything is written; and what ``backtest_prepare`` raises for the
    instruments, dates and settings (BacktestInvalid, BacktestNoData). All 4xx; nothing is half-written."""
    require_role(
        user=actor,
        organisation_id=definition.organisation_id,
        roles=WRITERS,
        error=BacktestForbidden,
        what="run backtests",
    )
    if not isinstance(metric, str) or metric not in RANK_METRICS:
        raise SweepInvalid(
            f"Rank by one of {', '.join(RANK_METRICS)}.", extra={"field": "metric", "choices": list(RANK_METRICS)}
        )
    points = sweep_grid_expand(kind=definition.kind, base_params=definition.params, grid=grid)
    # Instruments, dates and settings are the same for every run: checked once, with the first combination.
    prepared = backtest_prepare(
        kind=definition.kind,
        params=points[0].params,
        instruments=instruments,
        start=start,
        end=end,
        settings=settings,
    )
    assert isinstance(grid, dict)
    with transaction.atomic():
        sweep = BacktestSweep.objects.create(
            organisation_id=definition.organisation_id,
            definition=definition,
            grid=grid,
            metric=metric,
            created_by=actor,
        )
        runs = BacktestRun.objects.bulk_create(
            BacktestRun(
                organisation_id=definition.organisation_id,
                definition=definition,
                sweep=sweep,
                kind=prepared.kind,
                params=point.params,
                instruments=[spec.instrument_id for spec in prepared.instruments],
                start_date=prepared.start,
                end_date=prepared.end,
                settings=prepared.settings.model_dump(mode="json"),
                created_by=actor,
            )
            for point in points
        )
        audit_record(
            actor=actor,
            action="strategy.sweep.created",
            target=sweep,
            payload={
                "definition_id": definition.pk,
                "grid": grid,
                "metric": metric,
                "runs": len(runs),
                "instruments": runs[0].instruments,
                "start": str(prepared.start),
                "end": str(prepared.end),
            },
        )
        run_ids = [run.pk for run in runs]
        transaction.on_commit(lambda: _send(run_ids))
    return sweep


def sweep_refresh(*, sweep_id: int) -> str:
    """Set the sweep's status from its runs by a conditional update (running once any has started, done
    when all have finished, failed when all failed); return the status it has."""
    statuses = set(BacktestRun.objects.filter(sweep_id=sweep_id).values_list("status", flat=True).distinct())
    run_status = BacktestRun.Status
    if not statuses or statuses == {run_status.QUEUED}:
        status = BacktestSweep.Status.QUEUED
    elif statuses & {run_status.QUEUED, run_status.RUNNING}:
        status = BacktestSweep.Status.RUNNING
    elif statuses == {run_status.FAILED}:
        status = BacktestSweep.Status.FAILED
    else:
        status = BacktestSweep.Status.DONE
    BacktestSweep.objects.filter(pk=sweep_id).exclude(status=status).update(status=status)
    return status
