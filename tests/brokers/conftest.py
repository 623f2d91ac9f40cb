"""The trading world fixtures, for the tests of broker sessions that place orders."""

from tests.task_capture import tasks_recorded_not_sent  # noqa: F401
from tests.trading_world import _fresh_trading_state, world  # noqa: F401
