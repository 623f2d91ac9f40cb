"""Send a server-rendered fragment to every open page of one user.

Standalone mode's in-memory channel layer lives on the ASGI server's event loop: a push made on a
thread that is not serving a request (a Celery task of the in-process worker, a tick listener) cannot
reach it through ``async_to_sync``, which would run the send on an event loop of that thread's own.
So the user socket's consumer registers the server's loop (``serve_pushes_on``) and a push from a
thread outside it is handed to that loop. With the Redis layer (the full stack) nothing is registered
and every push is sent from the calling thread, as before.

The journal. Pushes ride the channel layer, which keeps nothing: a web worker killed with a push still in its
queue, or a socket that is reconnecting while a push goes out, would leave a page showing an order's
old state. So a producer whose changes must reach every page (``orders.push``) records each change
here first, right after its commit, under a per-user sequence number: ``record`` takes the next
number of each recipient (``INCR``) and stores the change's reference (its kind and ids, never the
rendered HTML) in the user's log, a sorted set scored by that number, holding the newest
``JOURNAL_LENGTH`` entries for ``JOURNAL_SECONDS``. Each push carries the numbers it delivers
(``push_to_user(..., seqs=)``).

A ``/ws/user/`` socket (``infra.consumers``) tracks the numbers it has forwarded (``Cursor``) and
tells its page the highest below which it holds everything (a ``{"type": "seq"}`` frame); the page
reconnects (to any worker) with ``?since=<that number>`` and the socket replays what the log holds
after it. While open, a socket also reads its user's counter every ``GAP_CHECK_SECONDS`` and replays
the numbers that were due at the previous reading and never arrived (another worker's lost push).
A replay renders each change's *current* state from the database through the replayer its kind
registered (``register_replay``), so what it sends is the truth at that moment, whatever was lost.
Its cost is bounded whatever the number of changes: ``render_replay`` reads the log once and calls each
kind's replayer once for all of them, which renders each row once (several changes of one order are
its one row, in its latest state); the result (a ``Replay``) serves every socket of the user that
missed any of those changes (``infra.consumers``), and a page more than ``REPLAY_LIMIT`` changes
behind is told to resync instead.
A page away longer than the log keeps is sent ``{"type": "resync"}`` and reloads its books instead.

Standalone mode (no Redis) keeps the journal in this one process's memory.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from collections.abc import Callable, Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from infra.sockets import user_group
from infra.sync_asgi import REQUEST_THREAD_PREFIX

logger = logging.getLogger(__name__)
_server_loop: asyncio.AbstractEventLoop | None = None


def serve_pushes_on(loop: asyncio.AbstractEventLoop) -> None:
    """Hand the pushes made on threads outside ``loop`` to it (standalone mode's in-memory layer)."""
    global _server_loop
    _server_loop = loop


def push_to_user(user_id: int, html: str, seqs: Iterable[int] = ()) -> None:
    """Deliver ``html`` (an hx-swap-oob fragment) to the user's sockets; a no-op if nobody listens.
    ``seqs``: the user's journal numbers (``record``) of the changes it shows."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "user.push", "html": html, "seqs": list(seqs)}
    loop = _server_loop
    if loop is not None and loop.is_running() and not _serving_requests():
        asyncio.run_coroutine_threadsafe(layer.group_send(user_group(user_id), message), loop)
        return
    async_to_sync(layer.group_send)(user_group(user_id), message)


def _serving_requests() -> bool:
    """Whether this thread serves a request (infra.sync_asgi's threads, named for it), from which
    asgiref's thread-sensitive calls reach the server's loop as they always have."""
    return threading.current_thread().name.startswith(REQUEST_THREAD_PREFIX)


# --- the journal: what each user was sent, kept so a socket that missed some of it catches up ------

JOURNAL_LENGTH = 1000  # entries kept per user
JOURNAL_SECONDS = 86_400  # a user's log lapses a day after its last entry (its counter never lapses)
GAP_CHECK_SECONDS = 3.0  # how often an open socket looks for numbers it never received
JOURNAL_KEY_PREFIX = "terminal:push:"

REPLAY_LIMIT = 500  # a socket further behind than this many changes is told to resync rather than replayed

Fragments = list[tuple[str, str]]  # (the row's id, its oob HTML)
Replayer = Callable[[int, list[dict]], list[Fragments]]
_replayers: dict[str, Replayer] = {}


def register_replay(kind: str, func: Replayer) -> None:
    """``func(user_id, entries)`` renders the current state of the changes ``entries`` name (each the
    keyword arguments of a ``record`` of this ``kind``): for each entry, the rows (id, oob fragment)
    that show it to ``user_id`` (none: nothing the user may see). A row several entries show is
    rendered once and named by the same id."""
    _replayers[kind] = func


def record(user_ids: Iterable[int], kind: str, **ids: int | str | None) -> dict[int, int]:
    """Journal one change for each of ``user_ids``; return each user's sequence number for it. A
    failure is logged and returns {} (the push still goes out; only its recovery is lost)."""
    users = sorted(set(user_ids))
    if not users:
        return {}
    entry = json.dumps({"kind": kind, **ids}, separators=(",", ":"), sort_keys=True)
    try:
        return _journal().record(users, entry)
    except Exception:
        logger.warning("could not journal a %s change for %d users", kind, len(users), exc_info=True)
        return {}


def current_seq(user_id: int) -> int:
    """The user's newest sequence number (0 before the first). Raises what Redis raises."""
    return _journal().current(user_id)


def page_seq(user_id: int | None) -> int | None:
    """The number a page rendered now starts from (its socket asks for what follows), or None when it
    cannot be read: the page's socket then starts from the number current when it opens."""
    if user_id is None:
        return None
    try:
        return current_seq(user_id)
    except Exception:
        logger.warning("could not read the user's push journal for a page", exc_info=True)
        return None


def entries(user_id: int, after: int, upto: int | None = None) -> list[tuple[int, dict]]:
    """The user's journalled changes numbered after ``after`` (up to ``upto``), oldest first."""
    return _journal().entries(user_id, after, upto)


class Replay:
    """The current state of a user's journalled changes numbered after ``after`` up to ``as_of``,
    rendered once (``render_replay``); each socket of the user takes the rows of the changes it missed
    (``html``). ``as_of`` was the user's newest number before the database was read, so the rows are
    at least as new as every change numbered up to it."""

    def __init__(self, after: int, as_of: int, rows: dict[str, str], shows: dict[int, list[str]]) -> None:
        self.after, self.as_of = after, as_of
        self._rows = rows  # row id -> fragment, in the order they are sent
        self._shows = shows  # number -> the ids of the rows that show its change (absent: not in the log)

    def serves(self, after: int, newest: int) -> bool:
        """Whether it holds every change a socket at ``after`` may ask for, rendered no older than the
        newest change (``newest``) the socket has been sent."""
        return self.after <= after and self.as_of >= newest

    def numbers(self, after: int, upto: int, skip: Iterable[int] = ()) -> list[int]:
        """The numbers of the logged changes after ``after`` up to ``upto`` not in ``skip``."""
        skipped = set(skip)
        return sorted(seq for seq in self._shows if after < seq <= upto and seq not in skipped)

    def html(self, seqs: Iterable[int]) -> str:
        """The rows that show the changes ``seqs``, each once."""
        wanted = {key for seq in seqs for key in self._shows.get(seq, ())}
        return "".join(fragment for key, fragment in self._rows.items() if key in wanted)


def render_replay(user_id: int, after: int) -> Replay:
    """Render the current state of every change of the user's log numbered after ``after``: one read of
    the log and one call of each kind's replayer for all of them. Runs database queries (call it from
    a thread)."""
    as_of = current_seq(user_id)  # read first: every change numbered up to it is committed
    found = entries(user_id, after, as_of)
    by_kind: dict[str, list[tuple[int, dict]]] = {}
    for seq, entry in found:
        by_kind.setdefault(str(entry.get("kind")), []).append((seq, entry))
    rows: dict[str, str] = {}
    shows: dict[int, list[str]] = {seq: [] for seq, _entry in found}
    for kind, kind_entries in by_kind.items():
        replayer = _replayers.get(kind)
        if replayer is None:
            logger.warning("no replayer for journalled %s changes", kind)
            continue
        rendered = replayer(user_id, [entry for _seq, entry in kind_entries])
        for (seq, _entry), fragments in zip(kind_entries, rendered, strict=True):
            for key, fragment in fragments:
                rows.setdefault(key, fragment)
                shows[seq].append(key)
    return Replay(after, as_of, rows, shows)


def replay(user_id: int, after: int, upto: int | None = None, skip: Iterable[int] = ()) -> tuple[str, list[int]]:
    """Render the current state of the user's changes numbered after ``after`` (up to ``upto``) but not
    in ``skip``; return the fragments and the numbers they cover. Runs database queries (call it from a
    thread). ``replay_complete`` tells whether the log still holds every number asked for."""
    rendered = render_replay(user_id, after)
    numbers = rendered.numbers(after, rendered.as_of if upto is None else upto, skip)
    return rendered.html(numbers), numbers


def replay_complete(user_id: int, after: int) -> bool:
    """Whether the user's log still holds the change numbered right after ``after`` (or nothing was
    numbered after it): False when the page was away longer than the log keeps (``JOURNAL_LENGTH``
    changes, ``JOURNAL_SECONDS``), and a replay cannot bring it up to date."""
    if current_seq(user_id) <= after:
        return True
    first = entries(user_id, after, after + 1)
    return bool(first)


class Cursor:
    """What one socket has forwarded: ``low``, the number up to which it holds everything, and the
    numbers above it it has seen."""

    def __init__(self, low: int) -> None:
        self.low = low
        self.newest = low  # the newest number of any change forwarded (a replay must be no older)
        self._seen: set[int] = set()

    def saw(self, seqs: Iterable[int]) -> bool:
        """Count ``seqs`` as forwarded; return True when ``low`` moved."""
        before = self.low
        seqs = list(seqs)
        self.newest = max([self.newest, *seqs])
        self._seen.update(seq for seq in seqs if seq > self.low)
        while self.low + 1 in self._seen:
            self.low += 1
            self._seen.discard(self.low)
        return self.low != before

    def delivered(self, seqs: Iterable[int]) -> bool:
        """Whether every one of ``seqs`` was already forwarded or replayed (a late push is stale)."""
        return all(seq <= self.low or seq in self._seen for seq in seqs)

    def seen(self) -> set[int]:
        return set(self._seen)

    def advance_to(self, seq: int) -> bool:
        """Everything up to ``seq`` is delivered or replayed (or beyond the log: nothing more to get)."""
        if seq <= self.low:
            return False
        self.low = seq
        self.newest = max(self.newest, seq)
        self._seen = {s for s in self._seen if s > seq}
        self.saw(())
        return True


# INCR each user's counter, add the entry to the user's log under that number, trim and expire the
# log; one round trip, atomic. KEYS: counter, log of each user in turn. ARGV: entry, length, seconds.
_RECORD = """
local numbers = {}
for i = 1, #KEYS, 2 do
  local seq = redis.call('INCR', KEYS[i])
  redis.call('ZADD', KEYS[i + 1], seq, seq .. ':' .. ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[i + 1], 0, -tonumber(ARGV[2]) - 1)
  redis.call('EXPIRE', KEYS[i + 1], ARGV[3])
  numbers[#numbers + 1] = seq
end
return numbers
"""


class _RedisJournal:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._record = self._redis.register_script(_RECORD)

    @staticmethod
    def _keys(user_id: int) -> tuple[str, str]:
        return f"{JOURNAL_KEY_PREFIX}seq:{user_id}", f"{JOURNAL_KEY_PREFIX}log:{user_id}"

    def record(self, users: list[int], entry: str) -> dict[int, int]:
        keys = [key for user_id in users for key in self._keys(user_id)]
        numbers = self._record(keys=keys, args=[entry, JOURNAL_LENGTH, JOURNAL_SECONDS])
        return {user_id: int(seq) for user_id, seq in zip(users, numbers, strict=True)}

    def current(self, user_id: int) -> int:
        return int(self._redis.get(self._keys(user_id)[0]) or 0)

    def entries(self, user_id: int, after: int, upto: int | None) -> list[tuple[int, dict]]:
        members: list[bytes] = self._redis.zrangebyscore(  # type: ignore[assignment]
            self._keys(user_id)[1], f"({after}", "+inf" if upto is None else upto
        )
        found = []
        for member in members:
            seq, _, entry = member.decode().partition(":")
            found.append((int(seq), json.loads(entry)))
        return found


class _MemoryJournal:
    """Standalone mode: one process holds every socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[int, int] = {}
        self._logs: dict[int, collections.deque] = {}

    def record(self, users: list[int], entry: str) -> dict[int, int]:
        numbers = {}
        with self._lock:
            for user_id in users:
                seq = numbers[user_id] = self._counters.get(user_id, 0) + 1
                self._counters[user_id] = seq
                log = self._logs.setdefault(user_id, collections.deque(maxlen=JOURNAL_LENGTH))
                log.append((seq, json.loads(entry)))
        return numbers

    def current(self, user_id: int) -> int:
        with self._lock:
            return self._counters.get(user_id, 0)

    def entries(self, user_id: int, after: int, upto: int | None) -> list[tuple[int, dict]]:
        with self._lock:
            log = list(self._logs.get(user_id, ()))
        return [(seq, entry) for seq, entry in log if seq > after and (upto is None or seq <= upto)]


_journal_instance: _RedisJournal | _MemoryJournal | None = None
_journal_lock = threading.Lock()


def _journal() -> _RedisJournal | _MemoryJournal:
    global _journal_instance
    if _journal_instance is None:
        with _journal_lock:
            if _journal_instance is None:
                _journal_instance = _RedisJournal(settings.REDIS_URL) if settings.REDIS_URL else _MemoryJournal()
    return _journal_instance
