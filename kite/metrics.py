"""Prometheus metrics of the Kite app, exported from start-up (imported by KiteConfig.ready): the
symbol-master import's failures, and the ticker feed's (the feed process). The publisher's
``terminal_feed_lag_seconds`` measures a quote from its exchange time to its publication; the ticker's
own lag stops at the socket, so the two tell the broker's and network's delay from this process's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INSTRUMENT_IMPORT_FAILURE_REASONS = ("download", "malformed", "implausible", "error")

instrument_import_failures = Counter(
    "terminal_kite_instruments_import_failures",
    "Kite symbol-master imports refused or failed, the previous master kept, by reason: download (the "
    "file could not be fetched), malformed (a missing column, a row cut short), implausible (too few "
    "rows), error (anything else).",
    ["reason"],
)
for _reason in INSTRUMENT_IMPORT_FAILURE_REASONS:
    # Each series exists from start at 0, so the first failure is an increase Prometheus sees.
    instrument_import_failures.labels(_reason)

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
