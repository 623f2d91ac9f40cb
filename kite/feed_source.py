"""``manage.py run_feed --source kite``: the Kite ticker (``kite.feed.KiteTickerFeed``) as a feed source,
registered by ``KiteConfig.ready`` (``marketdata.feeds.sources``).

- Credentials: one api key and access token, those of the broker account ``KITE_FEED_ACCOUNT_ID``
  (broker ``kite``): the api key from its sealed credentials, the access token from its live session
  (the day's login). Without either the source raises ``FeedUnavailable``: ``run_feed`` prints the
  reason and exits with an error status.
- Instruments: those the runner subscribes, by their Kite ``instrument_token`` from the Kite mapping
  (``brokers.instrument_map``, written by ``load_kite_instruments``); an instrument Kite does not list
  is left out.
- Order updates: each order message for an active Kite account of ours (Kite's ``user_id`` is its
  ``client_code``) carrying one of our tags goes into the durable update queue
  (``brokers.services.inbox.inbox_receive``, source ``websocket``), which applies it in order with the
  postbacks. The same message received twice (on two connections) is stored once.
- After each reconnect the order updates sent meanwhile are lost, so the feed account's working orders
  are reconciled against Kite's order book: ``orders.tasks.reconcile_account_task`` is sent by name
  (kite may not import the order system).
- Gap fill (``CandleGapFill``): when the feed starts (a restarted ``run_feed``) and after each
  reconnect, the 1-minute bars each instrument missed since its newest bar (stored, or being built by
  the publisher) up to the minute in progress are read from Kite's historical API with the feed
  account's session and stored (``brokers.services.history.history_fill_gaps``), on a thread of its
  own so the ticks never wait for it. Only series the feed was building within
  ``KITE_GAP_FILL_MINUTES`` are continued; 0 turns it off, as does ``run_feed --no-candles``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from brokers.instrument_map import instrument_map
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get
from brokers.services.history import GapFill, history_fill_gaps
from brokers.services.inbox import inbox_receive
from brokers.services.sessions import session_secrets
from kite.adapter import KiteAdapter, update_of
from kite.feed import MAX_CONNECTIONS, TOKENS_PER_CONNECTION, KiteTickerFeed
from kite.records import order_from
from kite.ticker import OrderUpdate
from marketdata.feeds.publisher import Publisher
from marketdata.feeds.sources import FeedRequest, FeedUnavailable

logger = logging.getLogger(__name__)

BROKER = KiteAdapter.code
RECONCILE_ACCOUNT_TASK = "orders.tasks.reconcile_account_task"


def feed_account() -> BrokerAccount:
    """The Kite account named by ``KITE_FEED_ACCOUNT_ID``; raises FeedUnavailable."""
    account_id = settings.KITE_FEED_ACCOUNT_ID
    if not account_id:
        raise FeedUnavailable("Set KITE_FEED_ACCOUNT_ID to the Kite broker account whose session the ticker uses.")
    account = BrokerAccount.objects.filter(pk=account_id, broker=BROKER).first()
    if account is None:
        raise FeedUnavailable(f"KITE_FEED_ACCOUNT_ID={account_id} is not a Kite broker account.")
    if not account.is_active:
        raise FeedUnavailable(f"The Kite account {account.label or account.pk} is not active.")
    return account


def build_kite_feed(request: FeedRequest) -> KiteTickerFeed:
    """The ``kite`` feed source (see the module docstring); raises FeedUnavailable."""
    account = feed_account()
    name = account.label or str(account.pk)
    api_key = broker_credentials_get(account=account).get("api_key", "")
    if not api_key:
        raise FeedUnavailable(f"The Kite account {name} has no API key stored.")
    secrets = session_secrets(account)
    access_token = (secrets or {}).get("access_token", "")
    if not access_token:
        raise FeedUnavailable(
            f"The Kite account {name} has no live session: sign it in to Kite (the daily login), then start the feed."
        )
    by_instrument = instrument_map(BROKER).by_instrument
    tokens: dict[int, int] = {}
    for instrument in request.instruments:
        symbol = by_instrument.get(instrument.pk)
        if symbol is not None:
            tokens[instrument.pk] = int(symbol.token)
    if request.instruments and not tokens:
        raise FeedUnavailable(
            "No instrument to subscribe has a Kite instrument token: run manage.py load_kite_instruments."
        )
    capacity = TOKENS_PER_CONNECTION * MAX_CONNECTIONS
    if len(tokens) > capacity:
        raise FeedUnavailable(
            f"{len(tokens)} instruments exceed the Kite ticker's {capacity}: pass --limit (at most {capacity})."
        )
    orders = OrderStream(account_id=account.pk)
    gaps = CandleGapFill(account=account, instrument_ids=list(tokens), publisher=request.publisher)

    def reconnected(connection: int) -> None:
        orders.reconnected(connection)
        gaps.request(f"connection {connection} reconnected")

    feed = KiteTickerFeed(
        on_quotes=request.publisher.publish,
        api_key=api_key,
        access_token=access_token,
        on_order_update=orders.receive,
        on_reconnect=reconnected,
        url=settings.KITE_TICKER_URL,
        instrument_token=tokens,
    )
    gaps.request("feed started")  # the bars missed while the feed was down (a restart)
    logger.info("kite feed for account %s: %d instruments", account.pk, len(tokens))
    return feed


class CandleGapFill:
    """Fills the 1-minute bars the feed missed from Kite's history (see the module docstring), one
    fill at a time on a thread of its own: a request while one runs makes one more run after it."""

    def __init__(self, *, account: BrokerAccount, instrument_ids: list[int], publisher: Publisher) -> None:
        self.account = account
        self.instrument_ids = instrument_ids
        self.publisher = publisher
        self.fills: list[GapFill] = []
        self._lock = threading.Lock()
        self._running = False
        self._again: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(settings.KITE_GAP_FILL_MINUTES and self.publisher.store_candles and self.instrument_ids)

    def request(self, reason: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._running:
                self._again = reason
                return
            self._running = True
        threading.Thread(target=self._run, args=(reason,), name="kite-gap-fill", daemon=True).start()

    def _run(self, reason: str) -> None:
        try:
            while True:
                try:
                    self.fill(reason)
                except Exception:  # never stop the feed over its history
                    logger.exception("kite gap fill failed (%s)", reason)
                with self._lock:
                    if self._again is None:
                        self._running = False
                        return
                    reason, self._again = self._again, None
        finally:
            connection.close()  # this thread's own connection: a thread is started for each fill

    def fill(self, reason: str) -> GapFill:
        """Fill now, on the calling thread; return what was filled."""
        close_old_connections()  # a long-lived thread: drop a connection the database has closed
        result = history_fill_gaps(
            account=self.account,
            instrument_ids=self.instrument_ids,
            end=timezone.now(),
            lookback_minutes=settings.KITE_GAP_FILL_MINUTES,
            newest=self.publisher.aggregator.open_minutes(),
        )
        self.fills.append(result)
        logger.info(
            "kite gap fill (%s): %d bars over %d instruments, %d failed",
            reason,
            result.minutes,
            len(result.since),
            len(result.failed),
            extra={"gap_bars": result.minutes, "gap_instruments": len(result.since), "gap_end": result.end.isoformat()},
        )
        return result


class OrderStream:
    """The ticker's order messages into the durable update queue, and reconciliation after a reconnect.
    Called on the feed's order thread, one message at a time."""

    def __init__(self, *, account_id: int) -> None:
        self.account_id = account_id  # the feed's account: the one whose updates a reconnect missed
        self.received = 0
        self.ignored = 0

    def receive(self, update: OrderUpdate) -> None:
        close_old_connections()  # a long-lived thread: drop a connection the database has closed
        user_id = str(update.data.get("user_id") or "")
        account_id = (
            BrokerAccount.objects.filter(broker=BROKER, client_code=user_id, is_active=True)
            .values_list("pk", flat=True)
            .first()
            if user_id
            else None
        )
        if account_id is None:
            self.ignored += 1
            logger.warning("kite ticker: an order update for no Kite account of ours (%r)", user_id[:20])
            return
        try:
            order = order_from(_decimals(update.data))
        except (ValueError, TypeError, KeyError, ArithmeticError):
            self.ignored += 1
            logger.warning("kite ticker: an order update that is not a Kite order (%s)", update.order_id)
            return
        if not order.tag:
            self.ignored += 1  # placed outside the terminal: nothing of ours to update
            return
        digest = hashlib.sha256(
            b"websocket:" + json.dumps(dict(update.data), sort_keys=True, default=str).encode()
        ).hexdigest()
        try:
            with transaction.atomic():
                inbox_receive([update_of(account_id, order)], source="websocket", digest=digest)
        except IntegrityError:
            return  # the same message came before (on another of the ticker's connections)
        self.received += 1

    def reconnected(self, connection: int) -> None:
        try:
            current_app.send_task(RECONCILE_ACCOUNT_TASK, args=[self.account_id])
        except Exception:  # the minute's sweep still settles UNKNOWN orders; never stop the feed over it
            logger.warning("could not queue reconciliation of account %s", self.account_id, exc_info=True)
        else:
            logger.info("kite ticker connection %d reconnected: reconciling account %s", connection, self.account_id)


def _decimals(data: Mapping[str, Any]) -> dict[str, Any]:
    """The message's fields with its JSON numbers with a fraction as Decimal, as the client reads Kite."""
    return {key: Decimal(repr(value)) if isinstance(value, float) else value for key, value in data.items()}
