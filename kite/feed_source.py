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
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction

from brokers.instrument_map import instrument_map
from brokers.models import BrokerAccount
from brokers.services.credentials import broker_credentials_get
from brokers.services.inbox import inbox_receive
from brokers.services.sessions import session_secrets
from kite.adapter import KiteAdapter, update_of
from kite.feed import MAX_CONNECTIONS, TOKENS_PER_CONNECTION, KiteTickerFeed
from kite.records import order_from
from kite.ticker import OrderUpdate
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
    feed = KiteTickerFeed(
        on_quotes=request.publisher.publish,
        api_key=api_key,
        access_token=access_token,
        on_order_update=orders.receive,
        on_reconnect=orders.reconnected,
        url=settings.KITE_TICKER_URL,
        instrument_token=tokens,
    )
    logger.info("kite feed for account %s: %d instruments", account.pk, len(tokens))
    return feed


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
