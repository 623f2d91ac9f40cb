"""Run a market-data feed as its own process until SIGTERM/SIGINT (full stack: one per deployment).

The sources are those registered with ``marketdata.feeds.sources.register_feed_source`` (sim and
replay by market data, a broker's ticker by its plug-in)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError

from infra import lifespan
from marketdata.errors import MarketDataError
from marketdata.feeds.publisher import HEARTBEAT_KEY, Publisher
from marketdata.feeds.runner import build_feed
from marketdata.feeds.sources import feed_source, feed_source_names
from marketdata.services import candle_partitions_ensure


class Command(BaseCommand):
    help = "Publish quotes from a registered feed source (sim: the simulator; replay FILE: recorded ticks or candles)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--source", choices=feed_source_names(), default=None, help="default MARKETDATA_FEED_SOURCE (sim)"
        )
        parser.add_argument("file", nargs="?", type=Path, help="CSV of ticks or candles, for --source replay")
        parser.add_argument("--seed", type=int, help="make the simulation reproducible")
        parser.add_argument("--rate", type=float, help="simulated quotes per second (default MARKETDATA_SIM_RATE)")
        parser.add_argument("--speed", type=float, default=1.0, help="replay speed factor; 0 = as fast as possible")
        parser.add_argument("--keep-timestamps", action="store_true", help="replay with the file's own times")
        parser.add_argument("--limit", type=int, help="only the first N active instruments")
        parser.add_argument("--no-candles", action="store_true", help="do not store 1-minute candles")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.MARKETDATA_FEED_METRICS_PORT,
            help="serve Prometheus metrics on this port (0: off)",
        )

    def handle(self, *args, source, file, seed, rate, speed, keep_timestamps, limit, no_candles, metrics_port, **_):
        source = source or settings.MARKETDATA_FEED_SOURCE
        if source not in feed_source_names():
            raise CommandError(
                f"MARKETDATA_FEED_SOURCE={source!r} is not a feed source (one of {', '.join(feed_source_names())})"
            )
        if feed_source(source).needs_file and (file is None or not file.is_file()):
            raise CommandError(f"--source {source} needs an existing FILE")
        if rate is not None and rate <= 0:
            raise CommandError("--rate must be positive")
        if speed < 0:
            raise CommandError("--speed must be 0 (as fast as possible) or positive")
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(metrics_port)
        candle_partitions_ensure()
        publisher = Publisher(source=source, store_candles=not no_candles)
        try:
            feed = build_feed(
                source=source,
                publisher=publisher,
                seed=seed,
                rate=rate,
                path=file,
                speed=speed,
                keep_timestamps=keep_timestamps,
                limit=limit,
            )
        except MarketDataError as exc:
            raise CommandError(exc.message) from None
        if source == "sim" and not getattr(feed, "instruments", None):
            self.stderr.write("no active instruments: the simulator has nothing to quote (manage.py load_instruments)")
        stopping = threading.Event()

        def request_stop(signum, frame):
            stopping.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        feed.start()
        self.stdout.write(f"feed {source} running (metrics on :{metrics_port}); SIGTERM stops it")
        self.stdout.flush()
        started = time.monotonic()
        while not stopping.wait(1.0):
            if not feed.is_alive():
                break
        feed.stop()
        publisher.close()  # the listeners match the last quotes handed to them
        publisher.flush_candles()
        # The paper exchange fills resting orders on this process's ticks: push those changes still queued.
        lifespan.drain()
        cache.delete(HEARTBEAT_KEY)  # a cleanly stopped feed is not a failed one
        self.stdout.write(f"feed {source} stopped after {time.monotonic() - started:.0f} s")
        failure = getattr(feed, "failure", None)  # why a feed gave up on its own (a refused broker token)
        if failure:
            raise CommandError(f"feed {source} gave up: {failure}")
