"""Keep one order-update websocket open per signed-in broker account whose family has one.

    manage.py run_broker_streams [--interval 30] [--once]

Every ``--interval`` seconds the accounts with a live session are read again: a stream starts for an
account newly signed in and stops for one whose session ended (or whose stream gave up on a refused
session). Updates go into the durable queue (``brokers.families.runtime``). SIGTERM stops every stream.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand
from django.utils import timezone

from brokers.adapters import registry
from brokers.families.runtime import order_stream_for
from brokers.families.stream import StreamFeed
from brokers.models import BrokerAccount, BrokerSession


class Command(BaseCommand):
    help = "Keep an order-update websocket open per signed-in broker account whose family has one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=30.0, help="Seconds between session checks.")
        parser.add_argument("--once", action="store_true", help="Start what is due, report, and stop.")

    def handle(self, *args, interval: float = 30.0, once: bool = False, **options) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        streams: dict[int, StreamFeed] = {}
        if not once:
            self.stdout.write("order streams running; SIGTERM stops them")
            self.stdout.flush()
        try:
            while True:
                self._sync(streams)
                if once or stop.wait(interval):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            for feed in streams.values():
                feed.stop()
            self.stdout.write(f"Stopped {len(streams)} order stream(s).")

    def _sync(self, streams: dict[int, StreamFeed]) -> None:
        codes = [code for code in registry.registered_codes() if registry.family(code).login is not None]
        live = BrokerAccount.objects.filter(
            broker__in=codes,
            is_active=True,
            session__state=BrokerSession.State.LIVE,
            session__expires_at__gt=timezone.now(),
        )
        wanted = {account.pk: account for account in live}
        for account_id in [pk for pk, feed in streams.items() if pk not in wanted or not feed.is_alive()]:
            streams.pop(account_id).stop()
            self.stdout.write(f"Stopped the order stream of account {account_id}.")
        for account_id, account in wanted.items():
            if account_id in streams:
                continue
            feed = order_stream_for(account)
            if feed is None:
                continue
            feed.start()
            streams[account_id] = feed
            self.stdout.write(f"Started the order stream of {account.label} ({account.broker}).")
