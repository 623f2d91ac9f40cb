"""Fyers API v3's rate limits, the family's defaults (the registry's ``limits`` for a broker win).

Fyers counts every API call of a user against one set of windows: 10 requests a second, 200 a
minute and 100,000 a day (its API documentation's "Rate limits"; over them it answers error -353,
"API Limit exceeded (perSec/perMin/perDay)", which the SDK's error table lists). The figures are the
commonly published ones and are not in the SDK itself (unverified). Every endpoint class here
counts against the same three windows (the limits share their names); the day's window is a
sliding 24 hours, stricter than Fyers' calendar day.
"""

from __future__ import annotations

from brokers.rate_limits import RateLimit

_SHARED = (
    RateLimit("fyers_second", 10, 1.0),
    RateLimit("fyers_minute", 200, 60.0),
    RateLimit("fyers_day", 100_000, 86_400.0),
)

LIMITS: dict[str, tuple[RateLimit, ...]] = {
    "orders": _SHARED,
    "quotes": _SHARED,
    "other": _SHARED,
}
