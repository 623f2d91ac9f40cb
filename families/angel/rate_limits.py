"""Angel One SmartAPI's rate limits, by endpoint class, for ``brokers.rate_limits``.

From the SmartAPI team's table of per-second, per-minute and per-hour limits (the forum post
"Changes in API Rate Limit", https://smartapi.angelbroking.com/topic/4387/changes-in-api-rate-limit):
loginByPassword 1/s; placeOrder, modifyOrder and cancelOrder 20/s, 500/min and 1000/h each;
getOrderBook, getTradeBook, getPosition and getHolding 1/s; getRMS 2/s; market/v1/quote 10/s,
500/min and 5000/h. Each endpoint counts apart, as the table lists them. A broker entry of the
registry (``brokers/data/brokers.toml``, ``limits``) overrides a class (``catalogue.limits``).
"""

from __future__ import annotations

from brokers.rate_limits import RateLimit


def _per(name: str, second: int, minute: int | None = None, hour: int | None = None) -> tuple[RateLimit, ...]:
    limits = [RateLimit(f"angel_{name}_s", second, 1.0)]
    if minute is not None:
        limits.append(RateLimit(f"angel_{name}_min", minute, 60.0))
    if hour is not None:
        limits.append(RateLimit(f"angel_{name}_h", hour, 3600.0))
    return tuple(limits)


# Endpoint class (the registry's ``limits`` key) -> the documented limits.
LIMITS: dict[str, tuple[RateLimit, ...]] = {
    "login": _per("login", 1),
    "orders": _per("place", 20, 500, 1000),
    "order_modify": _per("modify", 20, 500, 1000),
    "order_cancel": _per("cancel", 20, 500, 1000),
    "order_book": _per("order_book", 1),
    "trade_book": _per("trade_book", 1),
    "positions": _per("positions", 1),
    "holdings": _per("holdings", 1),
    "funds": _per("funds", 2),
    "quotes": _per("quote", 10, 500, 5000),
}
