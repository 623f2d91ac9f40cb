"""Live updates: each order, trade and position change is pushed, after commit, to the sockets of the
user who placed the order and of everyone who may view the account, as the same partial the pages
render (``templates/orders/``), marked ``hx-swap-oob`` so htmx swaps it by its stable id.

In the full stack the pushes leave the request path: after commit a change is queued for this
process's sender thread, which waits one short frame (``FRAME_SECONDS``) so the changes of one act
(an order placed, accepted and filled) go out as one message per user, rendered once with the
order's latest state, and sends them through the Redis channel layer. A change none of whose
recipients has a ``/ws/user/`` socket open (``infra.sockets.users_listening``) is not rendered at all.
Standalone mode's in-memory channel layer lives on the server's event loop and can only be reached
from the thread that serves the request, so there the push is rendered and sent at once, as before.

Before it is queued, each change is journalled for its recipients (``infra.push.record``: the order's
and the trade's ids under each user's next sequence number), in the thread that committed it, so a
push lost with its process (a killed worker) or missed by a reconnecting socket is replayed to the
page by ``replay_order_changes``, which renders the orders' current state."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.template.loader import render_to_string

from brokers.selectors import account_viewer_ids
from infra import push as user_push
from infra import sockets
from infra.consumers import user_group
from infra.push import push_to_user
from marketdata.quotes import get_quote, get_quotes

logger = logging.getLogger(__name__)
FRAME_SECONDS = 0.05  # how long the sender gathers changes before it renders and sends them


_VIEWERS_TTL = 10.0  # seconds a process reuses an account's viewer list (a revoked grant stops within this)
_viewers: dict[int, tuple[float, frozenset[int]]] = {}


def account_viewers(account) -> set[int]:
    """Return the ids of users who may view ``account`` (cached for a few seconds per process)."""
    now = time.monotonic()
    cached = _viewers.get(account.pk)
    if cached is None or now - cached[0] > _VIEWERS_TTL:
        cached = (now, frozenset(account_viewer_ids(account=account)))
        _viewers[account.pk] = cached
    return set(cached[1])


def render_order_change(order, trade=None, trades=()) -> str:
    """Return the oob fragments for an order change (and its trades and position, when there are fills)."""
    from orders.models import Position
    from orders.selectors import order_row

    trades = [*trades, trade] if trade is not None else list(trades)
    parts = [render_to_string("orders/order_row.html", {"row": order_row(order), "oob": True})]
    for fill in trades:
        parts.append(render_to_string("orders/trade_row.html", {"trade": fill, "oob": True}))
    if trades:
        position = (
            Position.objects.filter(
                account_id=order.account_id, instrument_id=order.instrument_id, product=order.product
            )
            .select_related("instrument")
            .first()
        )
        if position is not None:
            quote = get_quote(position.instrument_id)
            ltp = quote.ltp if quote else None
            parts.append(
                render_to_string(
                    "orders/position_row.html",
                    {"position": position, "ltp": ltp, "unrealised": position.unrealised_pnl(ltp), "oob": True},
                )
            )
    return "".join(parts)


def _recipients(order) -> set[int]:
    recipients = account_viewers(order.account)
    if order.placed_by_id:
        recipients.add(order.placed_by_id)
    return recipients


def journal(order, trade=None) -> dict[int, int]:
    """Journal a committed change for everyone who sees the order; return each one's sequence number
    ({} when it could not be journalled: logged, never raised into the order flow)."""
    try:
        recipients = _recipients(order)
    except Exception:
        logger.warning("could not find who sees order %s to journal its change", order.pk, exc_info=True)
        return {}
    return user_push.record(recipients, "order", order=order.pk, trade=trade.pk if trade is not None else None)


def push_order_change(order, trade=None, seqs: dict[int, int] | None = None) -> None:
    """Render and send now (call after commit); a failure is logged, never raised into the order flow."""
    seqs = journal(order, trade) if seqs is None else seqs
    try:
        html = render_order_change(order, trade)
        for user_id in _recipients(order):
            push_to_user(user_id, html, [seqs[user_id]] if user_id in seqs else ())
    except Exception:
        logger.warning("could not push the change of order %s", order.pk, exc_info=True)


def order_changed_on_commit(order, trade=None) -> None:
    """Journal and push the change once the current transaction commits (at once outside one)."""
    if settings.STANDALONE:
        transaction.on_commit(lambda: push_order_change(order, trade))
    else:
        transaction.on_commit(lambda: _sender().submit(order, trade, journal(order, trade)))


def replay_order_changes(user_id: int, entries: list[dict]) -> str:
    """The current state of the journalled orders (with the journalled trades) that ``user_id`` may see
    now, as the oob fragments a push carries, each row once."""
    shown: dict[str, str] = {}
    for fragments in replay_order_fragments(user_id, entries):
        shown.update(fragments)
    return "".join(shown.values())


def replay_order_fragments(user_id: int, entries: list[dict]) -> list[list[tuple[str, str]]]:
    """For each journalled change (``entries``), the rows that show its current state to ``user_id``
    (``infra.push.register_replay``): the order's row, and with a trade the trade's and the position's;
    nothing for an order the user may not see now, or that is gone. Bounded cost whatever the number of
    changes: one query each for the orders, the trades and the positions, one read of the quotes, and
    each row rendered once however many changes it shows (an order placed, acknowledged and filled is
    one row, in its latest state)."""
    from django.db.models import Q

    from orders.models import Order, Position, Trade

    order_ids = {int(entry["order"]) for entry in entries if entry.get("order")}
    trade_ids = {int(entry["trade"]) for entry in entries if entry.get("trade")}
    orders = {
        order.pk: order
        for order in Order.objects.filter(pk__in=order_ids).select_related("account", "instrument")
        if user_id in _recipients(order)  # access changed since: not this user's to see now
    }
    trades = {
        trade.pk: trade
        for trade in Trade.objects.filter(pk__in=trade_ids, order_id__in=list(orders)).select_related("instrument")
    }
    traded = {orders[trade.order_id] for trade in trades.values()}
    books = {(order.account_id, order.instrument_id, order.product) for order in traded}
    positions = {}
    if books:
        where = Q()
        for account_id, instrument_id, product in books:
            where |= Q(account_id=account_id, instrument_id=instrument_id, product=product)
        positions = {
            (p.account_id, p.instrument_id, p.product): p
            for p in Position.objects.filter(where).select_related("instrument")
        }
    quotes = get_quotes(sorted({p.instrument_id for p in positions.values()})) if positions else {}

    rows: dict[str, str] = {}  # each row rendered once

    def row(key: str, render) -> tuple[str, str]:
        if key not in rows:
            rows[key] = render()
        return key, rows[key]

    def position_row(position) -> str:
        quote = quotes.get(position.instrument_id)
        ltp = quote.ltp if quote else None
        context = {"position": position, "ltp": ltp, "unrealised": position.unrealised_pnl(ltp), "oob": True}
        return render_to_string("orders/position_row.html", context)

    shows: list[list[tuple[str, str]]] = []
    for entry in entries:
        order = orders.get(int(entry.get("order") or 0))
        if order is None:
            shows.append([])
            continue
        fragments = [row(f"order-{order.pk}", lambda o=order: render_order_row(o))]
        trade = trades.get(int(entry.get("trade") or 0))
        if trade is not None:
            fragments.append(row(f"trade-{trade.pk}", lambda t=trade: render_trade_row(t)))
            position = positions.get((order.account_id, order.instrument_id, order.product))
            if position is not None:
                fragments.append(row(f"position-{position.pk}", lambda p=position: position_row(p)))
        shows.append(fragments)
    return shows


def render_order_row(order) -> str:
    from orders.selectors import order_row

    return render_to_string("orders/order_row.html", {"row": order_row(order), "oob": True})


def render_trade_row(trade) -> str:
    return render_to_string("orders/trade_row.html", {"trade": trade, "oob": True})


class _Sender:
    """This process's push thread: gathers changes for one frame, then renders and sends each order once.

    Changes of one order are merged (its newest instance, every new trade) and each user gets one
    message per frame. Order is kept: one thread sends, frames go out in turn.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0  # submitted and not yet sent
        self._done = threading.Condition()
        self._loop = asyncio.new_event_loop()  # the Redis layer keeps its connections per event loop
        threading.Thread(target=self._run, name="order-push", daemon=True).start()

    def submit(self, order, trade=None, seqs: dict[int, int] | None = None) -> None:
        """Queue a committed change; ``seqs``: its recipients' journal numbers (``journal``)."""
        with self._done:
            self._pending += 1
        self._queue.put((order, trade, seqs or {}))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far has been sent; return False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            time.sleep(FRAME_SECONDS)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(batch)
            except Exception:
                logger.warning("could not push %d order changes", len(batch), exc_info=True)
            finally:
                connections.close_all()  # the position rows came from the pool (or a connection of our own)
                with self._done:
                    self._pending -= len(batch)
                    self._done.notify_all()

    def _send(self, batch: list) -> None:
        from channels.layers import get_channel_layer

        close_old_connections()
        changes: dict[int, tuple[object, list]] = {}
        numbers: dict[int, dict[int, list[int]]] = {}  # order -> user -> journal numbers
        for order, trade, seqs in batch:
            trades = changes[order.pk][1] if order.pk in changes else []
            if trade is not None:
                trades.append(trade)
            changes[order.pk] = (order, trades)  # the newest instance carries the latest state
            for user_id, seq in seqs.items():
                numbers.setdefault(order.pk, {}).setdefault(user_id, []).append(seq)
        layer = get_channel_layer()
        if layer is None:
            return
        recipients: dict[int, set[int]] = {}
        for order, _trades in changes.values():
            try:
                recipients[order.pk] = _recipients(order)
            except Exception:
                logger.warning("could not find who sees order %s", order.pk, exc_info=True)
        listening = _listening(set().union(*recipients.values()))
        messages: dict[int, list[str]] = {}
        delivered: dict[int, list[int]] = {}
        for order, trades in changes.values():
            users = recipients.get(order.pk, set()) & listening
            if not users:
                continue  # nobody has a socket open: nothing to render
            try:
                html = render_order_change(order, trades=trades)
                for user_id in users:
                    messages.setdefault(user_id, []).append(html)
                    delivered.setdefault(user_id, []).extend(numbers.get(order.pk, {}).get(user_id, ()))
            except Exception:
                logger.warning("could not push the change of order %s", order.pk, exc_info=True)
        if not messages:
            return

        async def send_all() -> list:
            sends = [
                layer.group_send(
                    user_group(user_id),
                    {"type": "user.push", "html": "".join(parts), "seqs": sorted(delivered.get(user_id, ()))},
                )
                for user_id, parts in messages.items()
            ]
            return await asyncio.gather(*sends, return_exceptions=True)

        for result in self._loop.run_until_complete(send_all()):
            if isinstance(result, Exception):
                logger.warning("could not push order changes", exc_info=result)


def _listening(user_ids: set[int]) -> set[int]:
    """Return the users among ``user_ids`` with a ``/ws/user/`` socket open, so that nobody's changes are
    rendered for no one: the sockets' own slots in Redis (``infra.sockets.users_listening``), one round
    trip. An error counts everyone as listening."""
    if not user_ids:
        return user_ids
    try:
        return sockets.users_listening(user_ids)
    except Exception:
        logger.warning("could not read which users have a socket open; pushing to all", exc_info=True)
        return user_ids


_sender_lock = threading.Lock()
_sender_instance: _Sender | None = None


def _sender() -> _Sender:
    global _sender_instance
    if _sender_instance is None:
        with _sender_lock:
            if _sender_instance is None:
                _sender_instance = _Sender()
    return _sender_instance


def flush(timeout: float = 5.0) -> bool:
    """Wait until the changes queued so far have been pushed (tests, shutdown); return False on timeout."""
    return _sender_instance is None or _sender_instance.flush(timeout)


def drain(timeout: float) -> bool:
    """The process is stopping: wait up to ``timeout`` seconds for the queued changes to be pushed;
    log what is left and return False on timeout (registered with infra.lifespan by OrdersConfig)."""
    if flush(timeout=timeout):
        return True
    logger.warning("order changes were still queued after %.1f s of shutdown; they are not pushed", timeout)
    return False
