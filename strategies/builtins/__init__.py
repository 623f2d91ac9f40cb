"""The built-in strategies; importing this package registers each of them."""

from strategies.builtins import ema_crossover, opening_range, short_straddle  # noqa: F401
