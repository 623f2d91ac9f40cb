"""RMS writes, one module per subdomain:

- ``pre_trade``: ``check_pre_trade``, the only pre-trade path, and the values it reads;
- ``kill_switch``: which switches cover an order, who may engage or lift one, engaging and lifting;
- ``risk_limits``: checking and setting an organisation's limits (``risk_limit_set``);
- ``access``: which organisations a user manages, shared by the last two.

Callers import the public names from ``rms.services``. A test that replaces a name patches the
module that uses it (``rms.services.pre_trade.get_throttle``), not this package.
"""

from rms.services.kill_switch import (
    active_kill_switch,
    kill_switch_keys,
    kill_switch_release,
    kill_switch_set,
    may_engage,
    may_release,
)
from rms.services.pre_trade import (
    DERIVATIVES,
    MARKET_TYPES,
    MAX_ORDER_QUANTITY,
    MAX_PRICE,
    PRICE_PLACES,
    PRICED_TYPES,
    STOP_TYPES,
    DeploymentLimits,
    OrderIntent,
    RiskState,
    check_deployment_limits,
    check_order_numbers,
    check_pre_trade,
    record_rejection,
    validate_order_input,
)
from rms.services.risk_limits import risk_limit_clean, risk_limit_set

__all__ = [
    "DERIVATIVES",
    "MARKET_TYPES",
    "MAX_ORDER_QUANTITY",
    "MAX_PRICE",
    "PRICED_TYPES",
    "PRICE_PLACES",
    "STOP_TYPES",
    "DeploymentLimits",
    "OrderIntent",
    "RiskState",
    "active_kill_switch",
    "check_deployment_limits",
    "check_order_numbers",
    "check_pre_trade",
    "kill_switch_keys",
    "kill_switch_release",
    "kill_switch_set",
    "may_engage",
    "may_release",
    "record_rejection",
    "risk_limit_clean",
    "risk_limit_set",
    "validate_order_input",
]
