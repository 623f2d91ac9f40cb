"""Prometheus metrics of the tick path. Imported by MarketdataConfig.ready so /metrics has them from start.

The feed process (``run_feed``) exports them on its own port; every web process exports its fan-out
metrics through ``/metrics``.
"""

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra.metrics import WS_CLIENTS as _ws_clients
from infra.metrics import register_scrape_collector
from marketdata.hours import market_open

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
LISTENER_LAG = Histogram(
    "terminal_tick_listener_lag_seconds",
    "Time from a quote reaching the tick listeners' hand-off (the oldest of a batch) to the listeners "
    "(paper exchange matching) finishing the batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LISTENER_BEHIND = Gauge(
    "terminal_tick_listener_behind_seconds",
    "How long the oldest quote not yet through the tick listeners has waited (0 while they keep up); "
    "set with the feed's heartbeat, once a second.",
)
LISTENER_CONFLATED = Counter(
    "terminal_tick_listener_conflated",
    "Quotes replaced in the tick listeners' hand-off by a newer quote of the same instrument before the "
    "listeners took them (their range is still passed on).",
)


class MarketOpenCollector(Collector):
    """``terminal_market_open``: 1 while NSE's cash market is in session (``marketdata.hours``), at
    scrape time, so alerts that matter only while India trades join on it (holidays not known)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self.collect()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "terminal_market_open",
            "1 while NSE's cash market is in session (09:15-15:30 IST on weekdays; exchange holidays "
            "count as open), else 0.",
        )
        family.add_metric([], 1.0 if market_open(timezone.now()) else 0.0)
        yield family


MARKET_OPEN = register_scrape_collector(MarketOpenCollector())
