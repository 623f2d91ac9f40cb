"""Prometheus metrics of running deployments, exported from start-up (imported by StrategiesConfig.ready).

Counters are per deployment (label ``deployment``, its id): a terminal runs hundreds of deployments,
not millions, so the label's cardinality stays small. They are written by whichever process ran the
deployment: a Celery worker of the ``strategies`` queue (bar-driven) or ``run_strategies`` (tick-driven
and every deployment's exits).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SIGNALS = Counter(
    "terminal_strategy_signals",
    "Events a deployment's strategy handled: bars, ticks batches and fills, by deployment and kind.",
    ["deployment", "kind"],
)
INTENTS = Counter("terminal_strategy_intents", "Intents a deployment's strategy emitted.", ["deployment"])
ORDERS = Counter(
    "terminal_strategy_orders", "Orders placed for a deployment's intents (one per account).", ["deployment"]
)
REJECTIONS = Counter(
    "terminal_strategy_rejections",
    "A deployment's intents refused by the order system or the pre-trade check, or that failed.",
    ["deployment"],
)
ERRORS = Counter(
    "terminal_strategy_errors",
    "A deployment's strategy raised (the deployment is paused) or its evaluation failed.",
    ["deployment"],
)
EXITS = Counter(
    "terminal_strategy_exits",
    "Strategy-level exits taken (mtm_stop_loss, mtm_target, trailing_stop, square_off_time).",
    ["deployment", "reason"],
)
EVALUATION_LAG = Histogram(
    "terminal_strategy_evaluation_lag_seconds",
    "Time from when a bar close was due for evaluation (the bar's close plus the settle delay that lets "
    "the feed store the bar) to the end of the deployment's evaluation, intents placed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0),
)
TICK_LAG = Histogram(
    "terminal_strategy_tick_lag_seconds",
    "Time from a tick's exchange timestamp to the end of the tick-driven deployments' handling of its batch "
    "(run_strategies).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
LEASES = Counter(
    "terminal_strategy_leases_lost",
    "Deployment leases a run_strategies process lost to another (it stops running those deployments).",
)


def count_applied(deployment_id: int, intents: list) -> None:
    """Count the StrategyIntent rows ``deployment_apply`` returned: placed ones as orders, the rest as
    rejections."""
    label = str(deployment_id)
    for intent in intents:
        if getattr(intent, "status", "") == "placed":
            ORDERS.labels(label).inc()
        else:
            REJECTIONS.labels(label).inc()
