"""The strategies app's writes, one module per subdomain:

- ``definitions``: ``strategy_create``, ``strategy_update``, ``strategy_delete`` (parameters validated
  by the kind's schema)
- ``algo_ids``: ``algo_id_create``, ``algo_id_deactivate`` (the organisation's Owner and Admins)
- ``deployments``: ``deployment_create`` and the lifecycle (start, pause, resume, stop, emergency stop),
  halting one account of a deployment
- ``execution``: ``deployment_apply``, a deployment's intents placed through the order services
- ``backtests``: ``backtest_create``, ``backtest_run`` (and ``backtest_prepare``, shared with ``manage.py backtest``)

Callers import the public names from ``strategies.services``.
"""

from strategies.services.algo_ids import algo_id_create, algo_id_deactivate
from strategies.services.backtests import backtest_create, backtest_prepare, backtest_run
from strategies.services.definitions import strategy_create, strategy_delete, strategy_update
from strategies.services.deployments import (
    deployment_account_halt,
    deployment_create,
    deployment_emergency_stop,
    deployment_pause,
    deployment_resume,
    deployment_start,
    deployment_stop,
)
from strategies.services.execution import deployment_apply

__all__ = [
    "algo_id_create",
    "algo_id_deactivate",
    "backtest_create",
    "backtest_prepare",
    "backtest_run",
    "deployment_account_halt",
    "deployment_apply",
    "deployment_create",
    "deployment_emergency_stop",
    "deployment_pause",
    "deployment_resume",
    "deployment_start",
    "deployment_stop",
    "strategy_create",
    "strategy_delete",
    "strategy_update",
]
