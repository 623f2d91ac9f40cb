"""Run the tick runner as its own process until SIGTERM/SIGINT: tick-driven deployments and every running
deployment's strategy-level exits (``strategies.runner``). Several may run: each runs only the
deployments it holds the lease of."""

from __future__ import annotations

import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from infra import lifespan
from infra.metrics import start_metrics_server
from strategies.runner import TickRunner, listen_redis


class Command(BaseCommand):
    help = "Run tick-driven deployments and the strategy-level exits on the tick stream until SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--lease-seconds", type=float, default=10.0, help="a deployment's lease lasts this long")
        parser.add_argument(
            "--refresh-seconds", type=float, default=1.0, help="re-read running deployments and renew leases this often"
        )
        parser.add_argument(
            "--metrics-port", type=int, default=None, help="Prometheus metrics port (default METRICS_PORT)"
        )

    def handle(self, *args, lease_seconds: float, refresh_seconds: float, metrics_port: int | None, **_):
        if not settings.REDIS_URL:
            raise CommandError("run_strategies reads ticks from Redis (REDIS_URL); standalone mode runs it in-process")
        if not 0 < refresh_seconds < lease_seconds:
            raise CommandError("--refresh-seconds must be positive and shorter than --lease-seconds")
        if metrics_port is not None and not 0 <= metrics_port < 65536:
            raise CommandError(f"--metrics-port {metrics_port} is out of range: expected 0-65535")
        start_metrics_server(metrics_port)
        runner = TickRunner(lease_seconds=lease_seconds, refresh_seconds=refresh_seconds)
        stopping = threading.Event()

        def request_stop(signum, frame):
            stopping.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        reader = threading.Thread(target=listen_redis, args=(runner, stopping), name="tick-reader", daemon=True)
        reader.start()
        self.stdout.write(f"strategy runner {runner.owner} running; SIGTERM stops it")
        self.stdout.flush()
        started = time.monotonic()
        runner.run(stopping)  # gives its leases up when it stops
        reader.join(timeout=5)
        lifespan.drain()  # order changes its placements queued for the users' sockets
        self.stdout.write(f"strategy runner {runner.owner} stopped after {time.monotonic() - started:.0f} s")
