"""The durable queue between a broker's order updates and the order system.

``inbox_receive`` stores updates (``InboundUpdate`` rows) in the caller's transaction: a postback
view commits them before it answers the broker, a websocket reader before it reads on. After commit
a drain is queued (``brokers.tasks.drain_update_inbox``; beat sweeps every few seconds too, should
the queued task be lost), and ``inbox_drain`` hands the rows, oldest first, to the update stream
(``brokers.adapters.updates.emit``, which the order system subscribes to) and marks them applied.

One drain runs at a time (a PostgreSQL session advisory lock; a process lock with SQLite), so updates
are applied in the order received. A drain killed after applying and before marking applies those
rows again on the next drain: applying is idempotent (a fill is recorded once by its trade id, a
status moves only forwards).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from celery import current_app
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from brokers.adapters import updates as update_stream
from brokers.adapters.base import BrokerUpdate, Fill
from brokers.models import InboundUpdate

logger = logging.getLogger(__name__)

_DRAIN_LOCK_ID = 0x6272_6F6B_696E_6278  # "brokinbx": the drain's advisory lock key
_local_drain = threading.Lock()


def encode_update(update: BrokerUpdate) -> dict:
    fill = update.fill
    return {
        "tag": update.tag,
        "broker_order_id": update.broker_order_id,
        "status": update.status,
        "ts": update.ts.isoformat(),
        "message": update.message,
        "filled_quantity": update.filled_quantity,
        "fill": None
        if fill is None
        else {
            "trade_id": fill.trade_id,
            "quantity": fill.quantity,
            "price": str(fill.price),
            "ts": fill.ts.isoformat(),
            "broker_order_id": fill.broker_order_id,
            "exchange": fill.exchange,
        },
    }


def decode_update(account_id: int, data: dict) -> BrokerUpdate:
    fill = data.get("fill")
    return BrokerUpdate(
        account_id=account_id,
        tag=data["tag"],
        broker_order_id=data["broker_order_id"],
        status=data["status"],
        ts=datetime.fromisoformat(data["ts"]),
        message=data.get("message", ""),
        filled_quantity=data.get("filled_quantity"),
        fill=None
        if fill is None
        else Fill(
            trade_id=fill["trade_id"],
            quantity=int(fill["quantity"]),
            price=Decimal(fill["price"]),
            ts=datetime.fromisoformat(fill["ts"]),
            broker_order_id=fill.get("broker_order_id", ""),
            exchange=fill.get("exchange", ""),
        ),
    )


def inbox_receive(updates: list[BrokerUpdate], *, source: str, digest: str | None = None) -> list[int]:
    """Store ``updates`` (in the caller's transaction, or one of their own) and queue a drain after
    commit; return the rows' ids. ``digest`` names the message they came in (one update only): a
    second message with the same digest raises IntegrityError and stores nothing."""
    if digest is not None and len(updates) != 1:
        raise ValueError("a digest names the message of one update")
    if not updates:
        return []
    now = timezone.now()
    with transaction.atomic():
        rows = InboundUpdate.objects.bulk_create(
            [
                InboundUpdate(
                    account_id=u.account_id, source=source, update=encode_update(u), received_at=now, digest=digest
                )
                for u in updates
            ]
        )
        transaction.on_commit(_queue_drain)
    return [row.pk for row in rows]


def _queue_drain() -> None:
    try:
        # By name: brokers.tasks calls this module, so this module never imports the tasks.
        current_app.send_task("brokers.tasks.drain_update_inbox")
    except Exception:  # the broker of tasks is down: beat's sweep drains the inbox
        logger.warning("could not queue a drain of the update inbox; the sweep will drain it", exc_info=True)


@contextmanager
def _one_drain() -> Iterator[bool]:
    """Yield whether this process may drain now (no other drain is running anywhere)."""
    if connection.vendor == "postgresql":
        # A session lock, not a transaction's: each order's updates commit on their own meanwhile.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_DRAIN_LOCK_ID])
            (locked,) = cursor.fetchone()
        try:
            yield bool(locked)
        finally:
            if locked:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [_DRAIN_LOCK_ID])
        return
    acquired = _local_drain.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            _local_drain.release()


def inbox_drain(*, batch: int = 200) -> int:
    """Apply every pending update, oldest first; return how many were applied (0 when another drain
    is running: it will apply them)."""
    done = 0
    with _one_drain() as mine:
        if not mine:
            return 0
        while True:
            rows = list(
                InboundUpdate.objects.filter(applied_at__isnull=True)
                .order_by("id")
                .values_list("pk", "account_id", "update")[:batch]
            )
            if not rows:
                return done
            update_stream.emit([decode_update(account_id, data) for _pk, account_id, data in rows])
            InboundUpdate.objects.filter(pk__in=[pk for pk, _a, _d in rows]).update(applied_at=timezone.now())
            done += len(rows)


def inbox_pending() -> int:
    """How many received updates are still to apply (a health and metrics figure)."""
    return InboundUpdate.objects.filter(applied_at__isnull=True).count()


def inbox_backlog(now: datetime | None = None) -> tuple[int, float]:
    """Return how many received updates are still to apply and how long the oldest of them has
    waited, in seconds (0 when none), in one query over the pending rows' partial index."""
    pending = InboundUpdate.objects.filter(applied_at__isnull=True).aggregate(n=Count("pk"), oldest=Min("received_at"))
    oldest = pending["oldest"]
    if oldest is None:
        return 0, 0.0
    return pending["n"], max(0.0, ((now or timezone.now()) - oldest).total_seconds())
