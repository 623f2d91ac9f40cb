"""Feed drill: the market-data feed process restarted, and Kite's ticker dropping its connection, under
a websocket subscriber of the served terminal.

``manage.py run_feed --source kite`` (its own process, as deployed) reads the local Kite ticker
(tests/kite/fake_kite_ticker's ``FakeTicker``, Kite's documented binary frames) with the session of a
Kite account signed in to the local Kite server (tests/kite/fake_kite.py, whose historical API serves
the minute bars). A browser-like client holds ``/ws/ticks/`` open on the served terminal throughout.

1. A restart after downtime: the candle table's newest bar is six minutes old (the feed's previous
   life); when the feed starts, the minutes since are read from Kite's history and stored (gap fill),
   and ticks reach the websocket client.
2. A restart under subscribers: the feed process is stopped (SIGTERM) and started again; the client
   receives ticks again, without reconnecting its own socket.
3. A ticker disconnect: the ticker aborts its socket (no close frame) and refuses the next handshake;
   the feed reconnects with backoff, subscribes its tokens again and sets their mode, queues the
   account's reconciliation, runs a gap fill, and the client receives ticks again.

Printed: each phase's time until ticks are back at the websocket client and the bars the gap fill
wrote. A gap shorter than a minute misses no whole minute, so phases 2 and 3 usually fill none (the
minute in progress is the live feed's); phase 1 shows the fill itself.
"""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from websockets.sync.client import connect

from marketdata.candles import Bar
from marketdata.models import Candle
from marketdata.services import candle_upsert_many
from tests.drills.served_kite import (
    kite_world,
    log_records,
    served_terminal,
    start_feed,
    stop_process,
    wait_for,
    write_numbers,
)
from tests.kite import fake_kite as fk
from tests.kite.fake_kite import FakeKite
from tests.kite.fake_ticker import FakeTicker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(300),
    pytest.mark.django_db(transaction=True),
]

TOKEN = 738561  # the local Kite server's NSE:RELIANCE
DOWNTIME_MINUTES = 6  # the newest stored bar's age when the drill starts the feed
BACK_WITHIN = 60.0  # seconds: a generous bound that only a feed that never comes back fails
GAP_FILL = re.compile(r"kite gap fill \(([^)]*)\): (\d+) bars over (\d+) instruments, (\d+) failed")


def kite_rows(first: datetime, minutes: int) -> list[list]:
    """Kite's minute candles from ``first`` (UTC): [IST time, open, high, low, close, volume, oi];
    the i-th closes at 3000 + i."""
    ist = first + timedelta(hours=5, minutes=30)
    return [
        [(ist + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:00+0530"), 3000 + i, 3001 + i, 2999 + i, 3000 + i, 7, 0]
        for i in range(minutes)
    ]


class Ticks:
    """The local ticker's prices for the token, sent every 0.1 s; ``phase`` sets the price's hundreds
    so a tick says which phase it belongs to."""

    def __init__(self, ticker: FakeTicker) -> None:
        self.ticker = ticker
        self.phase = 1
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def price(self, n: int) -> Decimal:
        return Decimal(1000 + 100 * self.phase) + Decimal(n % 50) / 20

    def _run(self) -> None:
        n = 0
        while not self.stop.wait(0.1):
            n += 1
            self.ticker.set_price(TOKEN, ltp=self.price(n), volume=1000 + n)
            try:
                self.ticker.send_ticks()
            except Exception:  # a socket closing under the send: the next one goes on
                continue


class Subscriber:
    """A websocket client of /ws/ticks/ (JSON format) subscribed to the instrument; records each
    quote's arrival (monotonic) and price."""

    def __init__(self, port: int, session_id: str, instrument_id: int) -> None:
        self.received: list[tuple[float, Decimal]] = []
        self._stack = ExitStack()
        self.socket = self._stack.enter_context(
            connect(
                f"ws://127.0.0.1:{port}/ws/ticks/?format=json",
                additional_headers={"Cookie": f"sessionid={session_id}"},
                origin=f"http://127.0.0.1:{port}",
                open_timeout=15,
            )
        )
        self.socket.send(json.dumps({"action": "subscribe", "instruments": [instrument_id]}))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.socket:
                data = json.loads(message)
                if data.get("type") == "quotes":
                    now = time.monotonic()
                    self.received.extend((now, Decimal(q["ltp"])) for q in data["quotes"])
        except Exception:  # closed at the end of the drill
            return

    def first_at_or_above(self, price: Decimal, since: float) -> float | None:
        for at, ltp in list(self.received):
            if at >= since and ltp >= price:
                return at
        return None

    def close(self) -> None:
        self._stack.close()


def _fills(log_path) -> list[tuple[str, int, int, int]]:
    found = []
    for record in log_records(log_path, "kite gap fill"):
        match = GAP_FILL.search(record.get("message", ""))
        if match:
            reason, bars, instruments, failed = match.groups()
            found.append((reason, int(bars), int(instruments), int(failed)))
    return found


def test_the_feed_comes_back_after_a_restart_and_a_ticker_disconnect_and_fills_its_gap(tmp_path):
    fake = FakeKite().start()
    ticker = FakeTicker(api_key=fk.API_KEY, access_token=fk.ACCESS_TOKEN).__enter__()
    feed = None
    subscriber = None
    ticks = Ticks(ticker)
    try:
        world = kite_world(accounts=1, fake_url=fake.url)
        account, instrument = world.accounts[0], world.instrument
        now = timezone.now()
        minute = now.replace(second=0, microsecond=0)
        first = minute - timedelta(minutes=30)
        fake.history[TOKEN] = kite_rows(first, 45)  # Kite's bars from 30 minutes ago to 15 minutes ahead
        kite_close = {first + timedelta(minutes=i): Decimal(3000 + i) for i in range(45)}
        newest = minute - timedelta(minutes=DOWNTIME_MINUTES)
        candle_upsert_many(
            bars=[
                Bar(
                    instrument.pk,
                    newest - timedelta(minutes=i),
                    Decimal(900),
                    Decimal(900),
                    Decimal(900),
                    Decimal(900),
                    1,
                    0,
                )
                for i in range(3)
            ]
        )
        database = connection.settings_dict["NAME"]
        feed_env = {
            "MARKETDATA_FEED_SOURCE": "kite",
            "KITE_FEED_ACCOUNT_ID": str(account.pk),
            "KITE_TICKER_URL": ticker.url,
            "KITE_API_ROOT": fake.url,
        }
        log_path = tmp_path / "run_feed.log"
        lines: list[str] = []
        with served_terminal(database, fake_url=fake.url, log_dir=tmp_path) as port:
            subscriber = Subscriber(port, world.session[0], instrument.pk)
            ticks.thread.start()

            # 1. A restart after DOWNTIME_MINUTES: the feed starts, fills its gap, ticks flow.
            started = time.monotonic()
            feed = start_feed(database, env=feed_env, log_path=log_path)
            back = wait_for(
                lambda: subscriber.first_at_or_above(ticks.price(0), started),
                timeout=BACK_WITHIN,
                message="the first ticks at the websocket client",
            )
            fill = wait_for(lambda: _fills(log_path), timeout=BACK_WITHIN, message="the feed's first gap fill")[0]
            stored = dict(
                Candle.objects.filter(instrument=instrument, ts__gt=newest, ts__lt=minute).values_list("ts", "close")
            )
            filled = sorted(stored)
            assert fill[0] == "feed started" and fill[1] >= DOWNTIME_MINUTES - 1 and fill[3] == 0, fill
            assert filled[: DOWNTIME_MINUTES - 1] == [newest + timedelta(minutes=i) for i in range(1, DOWNTIME_MINUTES)]
            wrong = [ts for ts in filled if stored[ts] != kite_close[ts]]
            assert not wrong, f"bars not Kite's: {wrong}"
            lines.append(
                f"feed start after {DOWNTIME_MINUTES} min down: ticks at the websocket client after "
                f"{back - started:.2f} s; gap filled {fill[1]} bars "
                f"({(newest + timedelta(minutes=1)).isoformat()} onwards, Kite's history), failed {fill[3]}"
            )

            # 2. The feed process restarted under the subscriber.
            fills_before = len(_fills(log_path))
            stopped = time.monotonic()
            stop_process(feed)
            ticks.phase = 2
            restarted = time.monotonic()
            feed = start_feed(database, env=feed_env, log_path=log_path)
            back = wait_for(
                lambda: subscriber.first_at_or_above(ticks.price(0), stopped),
                timeout=BACK_WITHIN,
                message="ticks at the websocket client after the feed's restart",
            )
            restart_fill = wait_for(
                lambda: _fills(log_path)[fills_before:], timeout=BACK_WITHIN, message="the restarted feed's gap fill"
            )[0]
            lines.append(
                f"feed process restart (SIGTERM, start): ticks back at the websocket client after "
                f"{back - stopped:.2f} s (stopped in {restarted - stopped:.2f} s, then {back - restarted:.2f} s to "
                f"start and deliver); gap filled {restart_fill[1]} bars, failed {restart_fill[3]}"
            )

            # 3. The ticker drops its socket and refuses the next handshake.
            fills_before = len(_fills(log_path))
            handshakes = ticker.handshakes
            connections = len(ticker.connections)
            ticker.refuse_next(1)
            dropped = time.monotonic()
            ticker.drop()
            ticks.phase = 3
            back = wait_for(
                lambda: subscriber.first_at_or_above(ticks.price(0), dropped),
                timeout=BACK_WITHIN,
                message="ticks at the websocket client after the ticker's disconnect",
            )
            reopened = ticker.connections[connections:]
            assert reopened, "the feed did not connect again"
            requests = reopened[-1].requests
            assert {"a": "subscribe", "v": [TOKEN]} in requests and any(r["a"] == "mode" for r in requests), requests
            drop_fill = wait_for(
                lambda: _fills(log_path)[fills_before:], timeout=BACK_WITHIN, message="the gap fill after the reconnect"
            )[0]
            reconcile = log_records(log_path, "reconnected: reconciling account")
            lines.append(
                f"ticker disconnect (socket aborted, next handshake refused): ticks back at the websocket client "
                f"after {back - dropped:.2f} s, {ticker.handshakes - handshakes} handshakes "
                f"({ticker.refused} refused); resubscribed {requests[0]}; gap filled {drop_fill[1]} bars "
                f"({drop_fill[0]}), failed {drop_fill[3]}; account reconciliation queued {len(reconcile)}"
            )
            assert drop_fill[0].endswith("reconnected") and reconcile
            write_numbers("feed_restart", lines)
    finally:
        ticks.stop.set()
        if subscriber is not None:
            subscriber.close()
        if feed is not None:
            stop_process(feed)
        ticker.__exit__(None, None, None)
        fake.stop()
