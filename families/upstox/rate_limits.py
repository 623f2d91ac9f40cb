"""Upstox's documented default rate limits, by endpoint class (``brokers.rate_limits``); the broker
registry may override them per broker (``brokers.catalogue.limits``).

Upstox's rate-limiting page counts per user and per API: standard APIs 50 requests a second, 500 a
minute and 2,000 in 30 minutes; order writes for a user without a registered algo 10 a second within
the same minute and half-hour windows. These numbers come from a summary of that page, not from an
SDK, and are marked unverified in docs/brokers.md."""

from __future__ import annotations

from brokers.rate_limits import RateLimit

ORDERS = (
    RateLimit("orders", 10, 1.0),
    RateLimit("orders_minute", 500, 60.0),
    RateLimit("orders_half_hour", 2000, 1800.0),
)
STANDARD = (
    RateLimit("standard", 50, 1.0),
    RateLimit("standard_minute", 500, 60.0),
    RateLimit("standard_half_hour", 2000, 1800.0),
)
DEFAULTS = {"orders": ORDERS, "other": STANDARD, "quotes": STANDARD}
