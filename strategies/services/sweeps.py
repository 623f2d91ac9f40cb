"""Parameter sweeps: a grid of parameter values expanded into one backtest's parameters per combination,
every combination validated against the strategy's schema before anything runs, and results ranked by
one metric.

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

from django.conf import settings

from strategies.errors import StrategyInvalid, SweepInvalid, SweepTooLarge
from strategies.registry import validate_params

MAX_KEYS = 8  # parameters one grid varies
MAX_DEPTH = 3  # parts of a dotted path
_KEY = re.compile(r"^[a-z_][a-z0-9_]{0,39}(\.[a-z_][a-z0-9_]{0,39}){0,2}$")  # up to MAX_DEPTH parts

# The metrics a sweep ranks by, and whether larger is better.
RANK_METRICS: dict[str, bool] = {
    "net_pnl": True,
    "return_pct": True,
    "sharpe": True,
    "win_rate": True,
    "profit_factor": True,
    "trades": True,
    "max_drawdown": False,
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
