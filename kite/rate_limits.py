"""Kite Connect's rate limits, by endpoint class, for ``brokers.rate_limits``.

Zerodha's documentation and staff answers on the Kite forum give: quotes 1 request/s, historical
candles 3 requests/s, every other endpoint 10 requests/s; orders 10/s and 400/min at the account
level, and at most 5,000 orders a day per user/API key across segments and varieties. Over a limit
Kite answers 429. Place, modify and cancel share the per-second and per-minute order counters
(Zerodha has counted all order writes together since 2019); only placing counts towards the day.
``/quote``, ``/quote/ohlc`` and ``/quote/ltp`` share the quote counter.

The day's cap is counted here in a sliding 24 h window, stricter than Kite's calendar day.
"""

from __future__ import annotations

from enum import StrEnum

from brokers.rate_limits import RateLimit


class EndpointClass(StrEnum):
    QUOTE = "quote"
    HISTORICAL = "historical"
    ORDER_PLACE = "order_place"
    ORDER_WRITE = "order_write"  # modify, cancel
    OTHER = "other"


_ORDER_WRITES = (RateLimit("orders", 10, 1.0), RateLimit("orders_minute", 400, 60.0))

LIMITS: dict[EndpointClass, tuple[RateLimit, ...]] = {
    EndpointClass.QUOTE: (RateLimit("quote", 1, 1.0),),
    EndpointClass.HISTORICAL: (RateLimit("historical", 3, 1.0),),
    EndpointClass.ORDER_PLACE: (*_ORDER_WRITES, RateLimit("orders_day", 5000, 86_400.0)),
    EndpointClass.ORDER_WRITE: _ORDER_WRITES,
    EndpointClass.OTHER: (RateLimit("other", 10, 1.0),),
}
