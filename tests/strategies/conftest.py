"""The trading world fixtures, shared with the order and RMS tests."""

from tests.trading_world import _fresh_trading_state, world  # noqa: F401
