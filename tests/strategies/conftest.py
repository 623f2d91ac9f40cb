"""The trading world and the strategy fixtures (tests/strategies/strategy_world.py)."""

from tests.strategies.strategy_world import definition, make_deployment, market  # noqa: F401
from tests.strategies.sweep_world import ema, infy  # noqa: F401
from tests.strategies.webhook_world import hooks  # noqa: F401
from tests.trading_world import _fresh_trading_state, world  # noqa: F401
