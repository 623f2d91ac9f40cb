"""Prometheus metrics of the project itself (django-prometheus adds the HTTP and database ones).

- Health at scrape time: a collector runs the ``/api/health`` checks (``infra.health``) when
  Prometheus scrapes, so queue depth, the age of the oldest waiting task, database latency and beat's
  heartbeat are exported from the same code that answers the probes, never from a second copy.
  Apps add scrape-time collectors of their own with ``register_scrape_collector`` (the brokers'
  sessions and update queue, whether the market is open).
- Websocket clients: the per-user socket counts its open connections in ``terminal_ws_clients``
  (label ``socket``; other sockets reuse this gauge with their own label value).
- Celery tasks: signal handlers count outcomes and time tasks in the process that runs them.

Every long-running process serves its own registry on ``settings.METRICS_PORT`` with
``start_metrics_server``: the web process from ``config.asgi``, a worker when it is ready (workers
run the threads pool so that tasks run in the process that serves the port), and a management
command that never ends (a feed) at its start. Prometheus scrapes that port on every pod; it is
not the public port, so no Host header check or TLS redirect stands in the way.

The web tier runs several worker processes under gunicorn (``config/gunicorn.conf.py``), which
sets ``PROMETHEUS_MULTIPROC_DIR``: each worker then writes its samples to files there, and the one
worker that binds the metrics port serves the sum over all of them (prometheus_client's multiprocess
mode), plus the health collector. Gauges say how their per-process values combine.

This module is imported by ``InfraConfig.ready`` so every metric exists from start-up.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import task_failure, task_postrun, task_prerun, task_retry, worker_ready
from django.conf import settings
from django.db import connections
from django.http import Http404
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra import health
from infra.queues import PUBLISHED_AT_HEADER

logger = logging.getLogger(__name__)

WS_CLIENTS = Gauge(
    "terminal_ws_clients", "Open websocket connections by socket.", ["socket"], multiprocess_mode="livesum"
)

TASKS = Counter(
    "terminal_celery_tasks", "Celery tasks finished, by task, queue and outcome.", ["task", "queue", "outcome"]
)
TASK_DURATION = Histogram(
    "terminal_celery_task_duration_seconds",
    "Time a Celery task ran, from start to finish.",
    ["task", "queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
TASK_QUEUE_WAIT = Histogram(
    "terminal_celery_task_queue_wait_seconds",
    "Time a Celery task waited in its queue, from publish to start.",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


class HealthCollector(Collector):
    """Exports the health checks' measurements, computed when Prometheus scrapes."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declaring the families up front keeps registration from running the checks at import time.
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("terminal_health_check_ok", "1 when the health check passes, else 0.", labels=["check"]),
            GaugeMetricFamily(
                "terminal_db_latency_seconds", "Time to run SELECT 1, connecting included when no connection is open."
            ),
            GaugeMetricFamily("terminal_celery_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]),
            GaugeMetricFamily(
                "terminal_celery_queue_oldest_task_age_seconds",
                "Age of the oldest task waiting in each Celery queue (0 when empty).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "terminal_celery_beat_last_seen_seconds", "Seconds since Celery beat's heartbeat task last ran."
            ),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Return the families filled from one run of every health check; a failing check reports 0."""
        checks_ok, db_latency, depth, age, beat = self._families()
        _, report = health.run_checks()
        for name, result in report["checks"].items():
            if result["status"] != "not_configured":
                checks_ok.add_metric([name], 1.0 if result["status"] == "ok" else 0.0)
        database = report["checks"].get("database", {})
        if "latency_ms" in database:
            db_latency.add_metric([], database["latency_ms"] / 1000)
        celery = report["checks"].get("celery", {})
        for queue, stats in celery.get("queues", {}).items():
            depth.add_metric([queue], stats["depth"])
            age.add_metric([queue], stats["oldest_age_s"] or 0.0)
        if report["checks"].get("beat", {}).get("last_seen_s") is not None:
            beat.add_metric([], report["checks"]["beat"]["last_seen_s"])
        yield from (checks_ok, db_latency, depth, age, beat)


HEALTH_COLLECTOR = HealthCollector()
REGISTRY.register(HEALTH_COLLECTOR)

# Collectors that measure when Prometheus scrapes: each process reports the same values (aggregate
# with max or min), and the multiprocess registry serves them alongside the summed samples.
_scrape_collectors: list[Collector] = [HEALTH_COLLECTOR]


def register_scrape_collector(collector: Collector) -> Collector:
    """Export ``collector`` from this process's registry and from the multiprocess one (gunicorn's
    workers), measured at scrape time. Its ``describe`` must not run it: registration happens at
    import, before any database is reachable. Registering the same collector twice is a no-op."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)
        REGISTRY.register(collector)
    return collector


def _queue_of(task) -> str:
    delivery = getattr(task.request, "delivery_info", None) or {}
    return delivery.get("routing_key") or "default"


_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str | None = None, task=None, **_: object) -> None:
    if task_id is None or task is None:
        return
    _started[task_id] = time.perf_counter()
    # Message headers become attributes of the request (protocol 2) or stay under .headers (protocol 1).
    published = getattr(task.request, PUBLISHED_AT_HEADER, None) or (task.request.headers or {}).get(
        PUBLISHED_AT_HEADER
    )
    if published is not None:
        TASK_QUEUE_WAIT.labels(_queue_of(task)).observe(max(0.0, time.time() - float(published)))


@task_postrun.connect
def _task_finished(task_id: str | None = None, task=None, state: str | None = None, **_: object) -> None:
    if task_id is None or task is None:
        return
    queue = _queue_of(task)
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_DURATION.labels(task.name, queue).observe(time.perf_counter() - started)
    # Failures and retries are counted by their own signals, which carry the reason.
    if state == "SUCCESS":
        TASKS.labels(task.name, queue, "success").inc()


@task_failure.connect
def _task_failed(sender=None, **_: object) -> None:
    if sender is not None:
        TASKS.labels(sender.name, _queue_of(sender), "failure").inc()


@task_retry.connect
def _task_retried(sender=None, **_: object) -> None:
    if sender is not None:
        TASKS.labels(sender.name, _queue_of(sender), "retry").inc()


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # scrapes every 15 s would flood the log
        pass


def _registry() -> CollectorRegistry:
    """This process's registry or, in multiprocess mode, one that sums every process's samples."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _scrape_collectors:
        registry.register(collector)
    return registry


def _metrics_app(exposition):
    def app(environ, start_response):
        # Each scrape runs in a thread of its own and the health checks open a database connection in
        # it; close it when the scrape is done, as Django does at the end of a request.
        try:
            return exposition(environ, start_response)
        finally:
            connections.close_all()

    return app


def start_metrics_server(port: int | None = None) -> bool:
    """Serve the metrics on ``port`` (default ``settings.METRICS_PORT``) on all interfaces.

    Returns False without serving when the port is 0, or in multiprocess mode when another worker of
    the same server already serves it (that one reports for all). Raises OSError when the port is
    taken otherwise.
    """
    port = settings.METRICS_PORT if port is None else port
    if port == 0:
        return False
    app = _metrics_app(make_wsgi_app(_registry()))
    try:
        # The metrics port must be reachable by Prometheus from other pods; NetworkPolicy admits only it.
        server = make_server("0.0.0.0", port, app, _MetricsServer, handler_class=_QuietHandler)  # noqa: S104  # nosec B104
    except OSError as error:
        if error.errno == errno.EADDRINUSE and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            logger.info("metrics served by another worker", extra={"port": port})
            return False
        raise
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    logger.info("metrics listening", extra={"port": port})
    return True


@worker_ready.connect
def _serve_worker_metrics(**_: object) -> None:
    start_metrics_server()


def metrics_view(request):
    """``/metrics`` on the public port, for set-ups without a metrics port (standalone, compose).

    Where ``METRICS_PORT`` is set (every Kubernetes pod), or in production at all, the metrics are
    scraped on that port inside the cluster and the public port answers 404: the Ingress routes every
    path to the web Service, so the public copy would reach the internet.
    """
    if settings.METRICS_PORT or settings.PRODUCTION:
        # In production the metrics are never public: they are scraped on METRICS_PORT only.
        raise Http404("metrics are served on the metrics port")
    return ExportToDjangoView(request)
