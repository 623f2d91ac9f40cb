"""Prometheus metrics of the Kite app, exported from start-up (imported by KiteConfig.ready): the
symbol-master import's failures and waits for a sign-in, its state measured when Prometheus scrapes
(when it was last loaded, whether it is overdue: every process reports the same values, aggregate
with ``max``), and the ticker feed's (the feed process). The publisher's
``terminal_feed_lag_seconds`` measures a quote from its exchange time to its publication; the ticker's
own lag stops at the socket, so the two tell the broker's and network's delay from this process's."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra.metrics import register_scrape_collector
from kite.master_refresh import master_loaded_at, master_overdue

logger = logging.getLogger(__name__)

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

instrument_waits = Counter(
    "terminal_kite_instruments_waiting_for_sign_in",
    "Runs of the Kite symbol-master refresh that found no signed-in Kite account (before the morning's "
    "sign-in, which queues the refresh): nothing downloaded, nothing failed.",
)


class KiteMasterCollector(Collector):
    """The Kite symbol master's state, read from the database at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()  # declared without querying: registered before any database is reachable

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "terminal_kite_instruments_loaded_timestamp_seconds",
                "When the last successful import of Kite's instruments dump started (Unix time; absent when none did).",
            ),
            GaugeMetricFamily(
                "terminal_kite_instruments_overdue",
                "1 when, past KITE_INSTRUMENTS_DUE_BY (IST), an active Kite account exists and Kite's symbol "
                "master was not loaded since the 06:00 IST cut-off; else 0.",
            ),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded, overdue = self._families()
        try:
            at = master_loaded_at()
            if at is not None:
                loaded.add_metric([], at.timestamp())
            overdue.add_metric([], 1 if master_overdue() else 0)
        except Exception:  # a scrape must never fail: the database health gauge reports why
            logger.warning("kite symbol-master metrics could not be read", exc_info=True)
        yield from (loaded, overdue)


KITE_MASTER_COLLECTOR = register_scrape_collector(KiteMasterCollector())

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
