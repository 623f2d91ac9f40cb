"""Prometheus metrics of the Kite ticker feed (the feed process). Imported by KiteConfig.ready.

The publisher's ``terminal_feed_lag_seconds`` already measures a quote from its exchange time to its
publication; the ticker's own lag stops at the socket, so the two tell the broker's and network's
delay apart from this process's.
"""

from prometheus_client import Counter, Gauge, Histogram

TICKER_LAG = Histogram(
    "terminal_kite_ticker_lag_seconds",
    "Age of the newest exchange timestamp in a Kite ticker frame when the frame is received "
    "(whole seconds on the wire; full-mode packets only).",
    buckets=(0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
)
TICKER_CONNECTIONS = Gauge(
    "terminal_kite_ticker_connections", "Open Kite ticker websocket connections.", multiprocess_mode="livesum"
)
TICKER_RECONNECTS = Counter(
    "terminal_kite_ticker_reconnects", "Kite ticker connections lost or refused and tried again after a backoff."
)
TICKER_MALFORMED = Counter(
    "terminal_kite_ticker_malformed",
    "Kite ticker input dropped as malformed: a binary frame whose framing is broken, a packet of an "
    "undocumented length, a text message of an unknown shape.",
    ["kind"],
)
TICKER_CONFLATED = Counter(
    "terminal_kite_ticker_conflated",
    "Quotes replaced by a newer quote of the same instrument while the quote callback was behind.",
)
