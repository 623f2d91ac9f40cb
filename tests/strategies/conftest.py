"""The trading world and the strategy fixtures (tests/strategies/strategy_world.py)."""

from tests.strategies.strategy_world import definition, make_deployment, market  # noqa: F401
from tests.trading_world import _fresh_trading_state, world  # noqa: F401
