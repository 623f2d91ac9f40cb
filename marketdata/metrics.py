"""Prometheus metrics of the tick path. Imported by MarketdataConfig.ready so /metrics has them from start.

The feed process (``run_feed``) exports them on its own port; every web process exports its fan-out
metrics through ``/metrics``.
"""

from prometheus_client import Counter, Gauge, Histogram

from infra.metrics import WS_CLIENTS as _ws_clients

TICKS_INGESTED = Counter("terminal_ticks_ingested", "Quotes received from the feed and stored.")
FANOUT_LAG = Histogram(
    "terminal_fanout_lag_seconds",
    "Age of the oldest tick in a websocket frame when the frame is sent (tick timestamp to send).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)
# Open /ws/ticks/ sockets: the shared websocket gauge, under socket="ticks".
WS_CLIENTS = _ws_clients.labels("ticks")
CONFLATION_DROPPED = Counter(
    "terminal_conflation_dropped",
    "Per-client updates replaced by a newer value of the same instrument before they could be sent.",
)
FEED_LAG = Gauge("terminal_feed_lag_seconds", "Age of the newest tick of the last batch when it was published.")
