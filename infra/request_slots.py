"""How many requests a web process runs Python for at once (``WEB_THREADS``).

A process runs one thread's Python at a time (the GIL). Every request thread beyond the first few only
adds hand-overs: each database or Redis round trip gives the GIL up, and getting it back means waiting
for whichever other request thread holds it, so under load a request's dozens of round trips each
wait, and the process spends CPU on the switching. The web tier scales with processes
(``WEB_CONCURRENCY``); inside one, a request waits for a slot before its middleware and view run, and
gives it back when they return. A waiting request holds no CPU: its thread sleeps on a semaphore.

A request that waits on a broker over the network gives its slot up for the call
(``brokers.adapters.registry`` wraps every network adapter's methods in ``released()``), so a slow
broker never keeps other requests of the process from running, unless the call is made inside a
database transaction (see ``released``). It gives its pooled database connection back for the call
too: the pool (``DATABASE_POOL_SIZE`` a process) is sized for requests running Python, and requests
that each held a connection through Kite's 200 ms made the others time out waiting for one
(bench/orders.py --broker kite). The in-database paper exchange keeps both: its work is the
process's own CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RequestSlots:
    """At most ``size`` threads between ``held()`` and its end, less those inside ``released()``."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a process needs at least one request slot")
        self.size = size
        self._free = threading.Semaphore(size)
        self._mine = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for a slot and keep it until the block ends (re-entrant within a thread)."""
        if getattr(self._mine, "held", False):
            yield
            return
        self._free.acquire()
        self._mine.held = True
        try:
            yield
        finally:
            self._mine.held = False
            self._free.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give this thread's slot up for the block (a wait on the network), then wait for one again."""
        if not getattr(self._mine, "held", False):
            yield
            return
        self._mine.held = False
        self._free.release()
        try:
            yield
        finally:
            self._free.acquire()
            self._mine.held = True


_slots: RequestSlots | None = None
_lock = threading.Lock()


def slots() -> RequestSlots:
    """Return this process's slots, ``settings.WEB_THREADS`` of them."""
    global _slots
    if _slots is None:
        from django.conf import settings

        with _lock:
            if _slots is None:
                _slots = RequestSlots(settings.WEB_THREADS)
    return _slots


@contextmanager
def released() -> Iterator[None]:
    """``slots().released()`` outside a database transaction; a no-op in a thread that holds no slot
    (a worker, a command, a test) or inside a transaction.

    A transaction may hold row locks that the requests in the other slots wait on: giving its slot up
    and waiting for one again would wait on them while they wait on it, and neither the database nor
    anything else would ever see the deadlock.

    Outside a transaction the thread's pooled database connection goes back to the pool for the
    block (the next statement takes one again), so requests waiting on a broker hold no connection.
    Nothing on the request path keeps session state on its connection across a broker call (a
    session advisory lock would be handed to whoever takes the connection next).
    """
    from django.db import connection

    if _slots is None or connection.in_atomic_block or not getattr(_slots._mine, "held", False):
        yield
        return
    with _slots.released():
        if connection.connection is not None and _pooled(connection):
            connection.close()  # back to the pool
        yield


def _pooled(connection) -> bool:
    """Whether the connection comes from Django's pool (closing one without a pool would end it)."""
    return bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))
