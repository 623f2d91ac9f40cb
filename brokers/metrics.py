"""Prometheus metrics of the brokers app, measured when Prometheus scrapes (imported by
BrokersConfig.ready), like the health gauges: every process that serves metrics reports the same
values, so aggregate them with ``max`` or ``min``, never ``sum``.

- ``terminal_broker_sessions{broker,state}``: the active accounts of each family with a daily login
  (Kite) by session state, ``live`` or ``lapsed`` (no live session now: never signed in, signed
  out, refused by the broker, or past its cut-off). One grouped query.
- ``terminal_broker_updates_pending`` and ``terminal_broker_updates_oldest_pending_age_seconds``:
  the broker order updates received (postbacks, websocket messages, polls) and not yet applied by
  the order system, from the durable queue (``brokers.services.inbox``). One query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from brokers.adapters import registry
from brokers.services.inbox import inbox_backlog
from brokers.services.sessions import session_counts
from infra.metrics import register_scrape_collector

logger = logging.getLogger(__name__)


def daily_login_codes() -> list[str]:
    """The broker codes whose family needs a daily login (a session), as the registry has them."""
    return [code for code in registry.registered_codes() if registry.family(code).login is not None]


class BrokerCollector(Collector):
    """Broker sessions by state and the update queue's backlog, read from the database at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declared without running the queries: registration happens before any database is reachable.
        yield from self._families()

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "terminal_broker_sessions",
                "Active broker accounts of families with a daily login, by broker and session state "
                "(live, or lapsed: no live session now).",
                labels=["broker", "state"],
            ),
            GaugeMetricFamily("terminal_broker_updates_pending", "Broker order updates received and not yet applied."),
            GaugeMetricFamily(
                "terminal_broker_updates_oldest_pending_age_seconds",
                "How long the oldest broker order update not yet applied has waited (0 when none).",
            ),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Return the families; when the database cannot answer, they are empty (the database's own
        health gauge reports that) and the scrape still succeeds."""
        sessions, pending, oldest = self._families()
        try:
            for (broker, state), n in sorted(session_counts(daily_login_codes()).items()):
                sessions.add_metric([broker, state], n)
            count, age = inbox_backlog()
            pending.add_metric([], count)
            oldest.add_metric([], age)
        except Exception:  # a scrape must never fail: the database health gauge reports why
            logger.warning("broker metrics could not be read", exc_info=True)
        yield from (sessions, pending, oldest)


BROKER_COLLECTOR = register_scrape_collector(BrokerCollector())
