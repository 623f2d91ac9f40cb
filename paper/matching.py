"""The paper exchange's matching rules: they live in ``brokers.matching`` so backtests
(``strategies.backtest``) fill orders by the same code; re-exported here for the paper exchange."""

from brokers.matching import (
    BUY,
    FUTURES_MPP,
    OPTIONS_MPP,
    SELL,
    Match,
    is_triggered,
    match,
    protected_limit,
    protection_amount,
    round_to_tick,
)

__all__ = [
    "BUY",
    "FUTURES_MPP",
    "OPTIONS_MPP",
    "SELL",
    "Match",
    "is_triggered",
    "match",
    "protected_limit",
    "protection_amount",
    "round_to_tick",
]
