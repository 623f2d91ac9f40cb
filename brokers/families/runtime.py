"""The network families' streams at run time.

- ``run_feed --source broker``: the market-data websocket of the family of broker account
  ``BROKER_FEED_ACCOUNT_ID`` (its live session), for the instruments the runner subscribes by the
  family's tokens (``brokers.instrument_map``); its order updates, where the same socket carries them,
  go into the durable update queue too.
- ``manage.py run_broker_streams``: one order-update websocket per signed-in account whose family has
  one (``order_stream``), started as sessions begin and stopped as they end.

Order messages become ``BrokerUpdate``s through the family's ``update_from_stream`` and are stored in
the durable queue (``brokers.services.inbox``, source ``websocket``), each message once (a digest of it).
After a reconnect, the updates sent meanwhile are lost, so the account's working orders are reconciled
(``orders.tasks.reconcile_account_task``, sent by name: brokers may not import the order system).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction

from brokers.adapters import registry
from brokers.families.stream import StreamFeed
from brokers.models import BrokerAccount
from brokers.services.inbox import inbox_receive
from brokers.services.sessions import session_secrets
from marketdata.feeds.sources import FeedRequest, FeedUnavailable

logger = logging.getLogger(__name__)

RECONCILE_ACCOUNT_TASK = "orders.tasks.reconcile_account_task"


class OrderInbox:
    """One account's order messages into the durable update queue (called on the stream's thread)."""

    def __init__(self, account: BrokerAccount) -> None:
        self.account_id, self.family = account.pk, registry.family(account.broker)
        self.received = self.ignored = self.malformed = 0
        self._writer: ThreadPoolExecutor | None = None

    def receive(self, messages: list[Mapping[str, Any]]) -> None:
        """Store the messages' updates. The stream calls this on its event loop's thread, where Django
        refuses database work (SynchronousOnlyOperation: every update would be lost, only logged), so
        there they are stored by a thread of this inbox's own while the stream waits (the messages
        keep their order); called from a plain thread, they are stored at once."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._store(messages)
            return
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"order-inbox-{self.account_id}")
        self._writer.submit(self._store, messages).result()

    def _store(self, messages: list[Mapping[str, Any]]) -> None:
        close_old_connections()  # a long-lived thread: drop a connection the database has closed
        for message in messages:
            try:
                update = self.family.update_from_stream(self.account_id, message)
            except (ValueError, TypeError, KeyError, ArithmeticError):
                self.malformed += 1
                logger.warning("%s order stream: a message not in the family's shape", self.family.code)
                continue
            if update is None:
                self.ignored += 1  # not an order of ours (placed elsewhere), or nothing changed
                continue
            body = json.dumps(dict(message), sort_keys=True, default=str)
            digest = hashlib.sha256(f"websocket:{self.account_id}:{body}".encode()).hexdigest()
            try:
                with transaction.atomic():
                    inbox_receive([update], source="websocket", digest=digest)
            except IntegrityError:
                continue  # the same message came before
            self.received += 1

    def reconnected(self) -> None:
        try:
            current_app.send_task(RECONCILE_ACCOUNT_TASK, args=[self.account_id])
        except Exception:  # the minute's sweep still settles UNKNOWN orders; never stop the stream over it
            logger.warning("could not queue reconciliation of account %s", self.account_id, exc_info=True)


def signed_in(account_id: int) -> tuple[BrokerAccount, dict[str, str]]:
    """The active account and its live session's secrets; raises FeedUnavailable."""
    account = BrokerAccount.objects.filter(pk=account_id, is_active=True).first()
    if account is None:
        raise FeedUnavailable(f"Broker account {account_id} does not exist or is not active.")
    secrets = session_secrets(account)
    if secrets is None:
        raise FeedUnavailable(f"{account.label or account.pk} has no live session: sign it in to its broker first.")
    return account, secrets


def build_broker_feed(request: FeedRequest) -> StreamFeed:
    """The ``broker`` feed source (see the module docstring); raises FeedUnavailable."""
    account_id = getattr(settings, "BROKER_FEED_ACCOUNT_ID", None)
    if not account_id:
        raise FeedUnavailable("Set BROKER_FEED_ACCOUNT_ID to the broker account whose session the feed uses.")
    account, secrets = signed_in(int(account_id))
    family = registry.family(account.broker)
    dialect = family.market_stream(account, secrets)
    if dialect is None:
        raise FeedUnavailable(f"The {family.code} family has no market-data websocket.")
    inbox = OrderInbox(account)
    feed = StreamFeed(
        dialect, on_quotes=request.publisher.publish, on_orders=inbox.receive, on_reconnect=inbox.reconnected
    )
    feed.subscribe(request.instruments)
    return feed


def order_stream_for(account: BrokerAccount) -> StreamFeed | None:
    """The account's order-update websocket as a feed (not started), or None without one or a session."""
    secrets = session_secrets(account)
    if secrets is None:
        return None
    family = registry.family(account.broker)
    dialect = family.order_stream(account, secrets)
    if dialect is None:
        return None
    inbox = OrderInbox(account)
    return StreamFeed(dialect, on_orders=inbox.receive, on_reconnect=inbox.reconnected)
