"""The trading world fixtures, for the tests of broker sessions that place orders."""

from tests.trading_world import _fresh_trading_state, world  # noqa: F401
