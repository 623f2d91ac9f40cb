"""The trading world fixtures are shared by the order and RMS tests."""

from tests.trading_world import _fresh_trading_state, world  # noqa: F401
