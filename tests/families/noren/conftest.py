"""The trading world, for the NorenOMS tests that sign in and trade."""

from tests.trading_world import _fresh_trading_state, world  # noqa: F401
