"""XTS's rate limits by endpoint class, the family's defaults for ``brokers.catalogue.limits``.

Symphony's public documentation does not state per-endpoint limits in a form we could verify
(docs/brokers.md, "xts"), so these are conservative: order writes 10 per second (the exchanges'
threshold for retail API orders) shared by place, modify and cancel; quotes 1 per second; every other
call 10 per second; sign-ins 2 per second. A broker's entry in the registry overrides them per class.
Over XTS's own limit it answers 429, which the transport maps to ``BrokerRateLimited`` (not sent).
"""

from __future__ import annotations

from brokers.rate_limits import RateLimit

ORDERS = (RateLimit("orders_0", 10, 1.0),)
QUOTES = (RateLimit("quotes_0", 1, 1.0),)
OTHER = (RateLimit("other_0", 10, 1.0),)
LOGIN = (RateLimit("login_0", 2, 1.0),)

DEFAULTS: dict[str, tuple[RateLimit, ...]] = {"orders": ORDERS, "quotes": QUOTES, "other": OTHER, "login": LOGIN}
