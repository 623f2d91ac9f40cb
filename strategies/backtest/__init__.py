"""Backtests: the strategies' own code replayed over stored 1-minute bars (docs/strategies.md, "Backtests")."""
