"""Open websockets: how many a user holds, and ending them when their sign-in or their access ends.

Every socket (``/ws/user/``, ``/ws/ticks/``) opens a ``Socket`` here once its user is known and
closes it on disconnect.

- The cap: a user holds at most ``WEBSOCKET_MAX_PER_USER`` sockets across every web process. Each
  socket is a member of its user's sorted set in Redis (full stack; a dict in standalone mode's one
  process) scored with the time its entry lapses, ``SLOT_SECONDS`` ahead. An open socket renews its
  entry every ``CHECK_SECONDS`` and removes it on disconnect, so a socket lost without one (a killed
  process) stops counting within ``SLOT_SECONDS``. The socket beyond the cap is accepted and closed
  at once with ``CLOSE_TOO_MANY`` and a reason naming the limit (a refused handshake would show the
  client only an HTTP 403).
- Who listens: a ``/ws/user/`` socket's entry is marked (``PUSHED``), so ``users_listening`` tells
  producers which users have a page open to receive pushes, from these sets, which this module owns,
  rather than from the channel layer's own storage of its groups.
- Ending: producers call ``end_session(session_key)`` when a session signs out, and
  ``end_user(user_id, reason)`` when a user's credentials (deactivation, password) or access (role,
  membership, grants) change; both send after commit, through the channel layer, to the groups
  ``session.<keyed hash of the session key>`` and ``sockets.<user id>``. Each web process has one
  channel of its own on its event loop (``_Watcher``) that joins the groups of the sockets it holds and
  ends them: a signed-out session's sockets with ``CLOSE_SIGNED_OUT``; on changed credentials every
  socket of the user re-checks its session and those no longer signed in close with
  ``CLOSE_SIGNED_OUT``; on changed access the sockets that carry account data close with
  ``CLOSE_ACCESS_CHANGED`` (the client reconnects and gets what it may see now). One channel per
  process rather than per socket: the tick socket has no channel-layer channel by design
  (marketdata.consumers).
- The clock: a socket also re-checks its session when the session is due to expire and every
  ``CHECK_SECONDS``, so an idle or overlong session closes its sockets while they are open, and a
  lost message costs at most ``CHECK_SECONDS``. The check is the hook ``accounts`` registers
  (``register_session_check``), which this layer cannot import.
- Redis restarted: the slots, and every group membership of the channel layer (the watcher's, and
  the ``user.<id>`` groups the user sockets join through ``Socket.join``), are kept in Redis; a
  Redis that comes back empty has forgotten them while the sockets stay open. Each web process keeps
  a marker key in Redis (``MARKER_PREFIX`` + its own id) and looks for it every
  ``RESTORE_CHECK_SECONDS``: when it is gone, the process joins every group again and renews every
  slot of the sockets it holds, then sets the marker again. A socket keeps receiving pushes within
  seconds of Redis's return, without reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils.crypto import salted_hmac

logger = logging.getLogger(__name__)

CLOSE_SIGNED_OUT = 4401  # the session ended: signed out, expired, deactivated, password changed
CLOSE_ACCESS_CHANGED = 4403  # the user's role or grants changed: reconnect to see what is allowed now
CLOSE_TOO_MANY = 4429  # the user already holds WEBSOCKET_MAX_PER_USER sockets

CHECK_SECONDS = 30.0  # an open socket renews its slot and re-checks its session this often
SLOT_SECONDS = 90.0  # a slot not renewed for this long no longer counts
KEY_PREFIX = "terminal:sockets:"  # Redis sorted set per user: member socket id, score the slot's lapse time
RESTORE_CHECK_SECONDS = 2.0  # how often a web process looks for its marker (has Redis lost its sockets?)
MARKER_PREFIX = "terminal:sockets:process:"  # + the process's id: present while Redis holds its registrations
PUSHED = "push-"  # the id prefix of a socket that receives pushes (``/ws/user/``)

CREDENTIALS = "credentials"
ACCESS = "access"

# (session_key or None, user_id) -> seconds until the session must be checked again, or None when it
# no longer signs that user in. Registered by accounts (AccountsConfig.ready); runs in a thread.
SessionCheck = Callable[[str | None, int], float | None]
_session_check: SessionCheck | None = None


def register_session_check(check: SessionCheck) -> None:
    global _session_check
    _session_check = check


# Group joins and leaves at once per event loop. channels_redis takes each from redis-py's pool for the
# loop, which refuses a connection past its 100 (MaxConnectionsError) rather than waiting: a thousand
# sockets closing together (a load balancer draining, a network blip) would fail their leaves. The gate
# makes the rest wait their turn, well below the pool's size, leaving room for the layer's sends.
LAYER_CALLS_AT_ONCE = 32
_layer_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _layer_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _layer_gates.get(loop)
    if gate is None:
        gate = _layer_gates[loop] = asyncio.Semaphore(LAYER_CALLS_AT_ONCE)
    return gate


async def group_add(layer, group: str, channel: str) -> None:
    """``layer.group_add`` through this loop's gate (``LAYER_CALLS_AT_ONCE``)."""
    async with _layer_gate():
        await layer.group_add(group, channel)


async def group_discard(layer, group: str, channel: str) -> None:
    """``layer.group_discard`` through this loop's gate (``LAYER_CALLS_AT_ONCE``)."""
    async with _layer_gate():
        await layer.group_discard(group, channel)


def user_group(user_id: int) -> str:
    """The group of a user's ``/ws/user/`` sockets, which producers push fragments to."""
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    # A keyed hash, never the key itself: whoever lists Redis's keys learns no cookie that signs anyone in.
    return "session." + salted_hmac("terminal.sockets.session_group", session_key).hexdigest()


def sockets_group(user_id: int) -> str:
    return f"sockets.{user_id}"


def socket_id(*, carries_accounts: bool) -> str:
    """A new socket's id, the member of its user's slot set; a socket that receives pushes (``/ws/user/``)
    is marked so ``users_listening`` can tell it from a tick socket."""
    return (PUSHED if carries_accounts else "") + uuid.uuid4().hex


def users_listening(user_ids: Iterable[int]) -> set[int]:
    """Return the users among ``user_ids`` who hold an open ``/ws/user/`` socket (a slot that has not
    lapsed), so producers can skip rendering what nobody would receive. One Redis round trip in the full
    stack. Raises what Redis raises."""
    return _slots().listening(user_ids)


# --- producers ------------------------------------------------------------------------------------
def end_session(session_key: str | None) -> None:
    """Close the sockets of the session ``session_key`` once the current transaction commits."""
    if session_key:
        group = session_group(session_key)
        _send_on_commit(group, {"type": "session.end", "group": group})


def end_user(user_id: int, reason: str) -> None:
    """Once the current transaction commits, tell ``user_id``'s sockets that their ``reason``
    (``CREDENTIALS`` or ``ACCESS``) changed."""
    if reason not in (CREDENTIALS, ACCESS):
        raise ValueError(f"unknown reason {reason!r}")
    group = sockets_group(user_id)
    _send_on_commit(group, {"type": "user.revoke", "group": group, "reason": reason})


def _send_on_commit(group: str, message: dict) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the socket's own clock closes it within CHECK_SECONDS
            logger.warning("could not tell the sockets of %s to end", group.split(".")[0], exc_info=True)

    transaction.on_commit(send)


# --- one socket -----------------------------------------------------------------------------------
class Closable(Protocol):
    async def close(self, code=None, reason=None) -> None: ...


class Socket:
    """One open websocket's registration: its slot, its groups and its clock.

    ``carries_accounts``: the socket forwards account data (order rows), so a change of access ends it.
    """

    def __init__(self, consumer: Closable, *, user_id: int, session_key: str | None, carries_accounts: bool) -> None:
        self.consumer = consumer
        self.user_id = user_id
        self.session_key = session_key
        self.carries_accounts = carries_accounts
        self.id = socket_id(carries_accounts=carries_accounts)
        self.groups = [sockets_group(user_id)] + ([session_group(session_key)] if session_key else [])
        self.refusal = ""
        self.joined: list[tuple[str, str]] = []  # (group, channel) the consumer joined through ``join``
        self._open = False
        self._ended = False
        self._clock: asyncio.Task | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    async def open(self) -> bool:
        """Take a slot and start watching; return False (and set ``refusal``) when the user is at the cap."""
        limit = settings.WEBSOCKET_MAX_PER_USER
        if not await _slots().acquire(self.user_id, self.id, limit):
            self.refusal = f"too many open sockets: at most {limit} per user (WEBSOCKET_MAX_PER_USER)"
            self._ended = True
            return False
        self._open = True
        await _watcher().watch(self)
        self._clock = asyncio.get_running_loop().create_task(self._keep(), name="socket-clock")
        return True

    async def join(self, group: str, channel: str) -> None:
        """Add the consumer's ``channel`` to ``group`` through the channel layer; joined again after Redis
        comes back empty (``restore``). The consumer leaves it itself on disconnect."""
        layer = get_channel_layer()
        if layer is None:
            return
        await group_add(layer, group, channel)
        self.joined.append((group, channel))

    async def restore(self, layer) -> None:
        """Register this open socket again in a Redis that lost it: its slot and the groups it joined."""
        if not self._open:
            return
        await _slots().renew(self.user_id, self.id)
        for group, channel in self.joined:
            await group_add(layer, group, channel)

    async def close(self) -> None:
        """Release the slot and stop watching (on disconnect; safe to call twice or unopened)."""
        if not self._open:
            return
        self._open = False
        if self._clock is not None and self._clock is not asyncio.current_task():
            self._clock.cancel()
        await _watcher().unwatch(self)
        await _slots().release(self.user_id, self.id)

    async def end(self, code: int, reason: str) -> None:
        """Close the websocket with ``code``; its disconnect then calls ``close``."""
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(Exception):  # the client may be gone already; disconnect follows either way
            await self.consumer.close(code=code, reason=reason)

    async def check(self) -> float | None:
        """Return the seconds until the session must be checked again, or None when it has ended."""
        if _session_check is None:
            return CHECK_SECONDS
        return await database_sync_to_async(_session_check)(self.session_key, self.user_id)

    async def recheck(self) -> None:
        if await self.check() is None:
            await self.end(CLOSE_SIGNED_OUT, "signed out")

    async def _keep(self) -> None:
        renew = False  # the first check only finds when the session is due to expire
        while self._open:
            try:
                if renew:
                    await _slots().renew(self.user_id, self.id)
                renew = True
                left = await self.check()
            except Exception:  # a database or Redis hiccup: try again next time rather than drop the socket
                logger.warning("could not check a socket's session", exc_info=True)
                await asyncio.sleep(CHECK_SECONDS)
                continue
            if left is None:
                await self.end(CLOSE_SIGNED_OUT, "signed out")
                return
            await asyncio.sleep(min(CHECK_SECONDS, max(left, 0.0) + 0.05))


# --- the per-process watcher ----------------------------------------------------------------------
class _Watcher:
    """This process's channel on the running event loop: joins the groups of the sockets it holds and
    ends them when a producer says so."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channel: str | None = None
        self._task: asyncio.Task | None = None
        self._restorer: asyncio.Task | None = None
        self._members: dict[str, set[Socket]] = defaultdict(set)
        self.marker = MARKER_PREFIX + uuid.uuid4().hex

    async def watch(self, socket: Socket) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await self._ensure_running(layer)
        for group in socket.groups:
            if not self._members[group]:
                await group_add(layer, group, channel)
            self._members[group].add(socket)

    async def unwatch(self, socket: Socket) -> None:
        layer = get_channel_layer()
        channel = self._channel  # None only while the first watch is starting, before any socket joined
        if layer is None or channel is None or self._loop is not asyncio.get_running_loop():
            return
        for group in socket.groups:
            members = self._members.get(group)
            if members is None or socket not in members:
                continue
            members.discard(socket)
            if not members:
                del self._members[group]
                with contextlib.suppress(Exception):  # a stale membership only costs a message, and expires
                    await group_discard(layer, group, channel)

    async def _ensure_running(self, layer) -> str:
        """Start listening on the running loop unless this process already does; return its channel."""
        loop = asyncio.get_running_loop()
        if self._channel is not None and self._task is not None and not self._task.done() and self._loop is loop:
            return self._channel
        self._loop = loop
        self._members.clear()  # sockets of another (closed) event loop are gone with it
        channel = self._channel = await layer.new_channel()  # channels_redis reads one prefix per process
        self._task = loop.create_task(self._listen(layer, channel), name="socket-watcher")
        if self._restorer is not None:
            self._restorer.cancel()
        slots = _slots()
        if isinstance(slots, _RedisSlots):
            self._restorer = loop.create_task(self._restore_when_lost(layer, channel, slots), name="socket-restorer")
        return channel

    async def _restore_when_lost(self, layer, channel: str, slots: _RedisSlots) -> None:
        """Every ``RESTORE_CHECK_SECONDS``: if Redis no longer holds this process's marker (it restarted
        empty), join every group again and renew every socket's slot, then set the marker."""
        with contextlib.suppress(Exception):  # the sockets joined just now: nothing to restore yet
            await slots.set_marker(self.marker)
        while True:
            await asyncio.sleep(RESTORE_CHECK_SECONDS)
            try:
                if await slots.touch_marker(self.marker):
                    continue
                await self.restore(layer, channel)
                await slots.set_marker(self.marker)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis still unreachable: the next look tries again
                logger.debug("could not look for the sockets' marker", exc_info=True)

    async def restore(self, layer, channel: str) -> int:
        """Join this process's groups again and restore every socket it holds; return how many."""
        for group in list(self._members):
            await group_add(layer, group, channel)
        held = {socket for members in list(self._members.values()) for socket in members}
        for socket in held:
            await socket.restore(layer)
        if held:
            logger.warning("Redis had lost this process's %d open sockets: registered them again", len(held))
        return len(held)

    async def _listen(self, layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("socket watcher could not receive; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            try:
                await self._dispatch(message)
            except Exception:
                logger.warning("socket watcher could not handle %r", message.get("type"), exc_info=True)

    async def _dispatch(self, message: dict) -> None:
        # The layer does not say through which group a message came, so every message names its group.
        kind, group = message.get("type"), message.get("group")
        sockets = list(self._members.get(group, ())) if isinstance(group, str) else []
        if kind == "session.end":
            await asyncio.gather(*(s.end(CLOSE_SIGNED_OUT, "signed out") for s in sockets))
        elif kind == "user.revoke" and message.get("reason") == ACCESS:
            ending = [s for s in sockets if s.carries_accounts]
            await asyncio.gather(*(s.end(CLOSE_ACCESS_CHANGED, "access changed") for s in ending))
        elif kind == "user.revoke" and message.get("reason") == CREDENTIALS:
            await asyncio.gather(*(s.recheck() for s in sockets))
        else:
            logger.warning("socket watcher ignored a message of type %r", kind)


_watcher_instance = _Watcher()


def _watcher() -> _Watcher:
    return _watcher_instance


# --- slots ----------------------------------------------------------------------------------------
class _MemorySlots:
    """Standalone mode: one process holds every socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[int, dict[str, float]] = defaultdict(dict)

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool:
        now = time.time()
        with self._lock:
            slots = self._slots[user_id]
            for stale in [s for s, lapse in slots.items() if lapse <= now]:
                del slots[stale]
            if len(slots) >= limit:
                return False
            slots[socket_id] = now + SLOT_SECONDS
            return True

    async def renew(self, user_id: int, socket_id: str) -> None:
        with self._lock:
            self._slots[user_id][socket_id] = time.time() + SLOT_SECONDS

    def listening(self, user_ids: Iterable[int]) -> set[int]:
        now = time.time()
        with self._lock:
            return {
                user_id
                for user_id in user_ids
                if any(s.startswith(PUSHED) and lapse > now for s, lapse in self._slots.get(user_id, {}).items())
            }

    async def release(self, user_id: int, socket_id: str) -> None:
        with self._lock:
            slots = self._slots.get(user_id)
            if slots is not None:
                slots.pop(socket_id, None)
                if not slots:
                    del self._slots[user_id]


# Drop lapsed slots, refuse at the cap, else add this socket's slot; one round trip, atomic.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class _RedisSlots:
    """Full stack: a sorted set per user shared by every web process. While Redis cannot be reached a
    socket is let in (the channel layer, on the same Redis, decides whether it works at all)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._acquire = self._redis.register_script(_ACQUIRE)

    @staticmethod
    def _key(user_id: int) -> str:
        return f"{KEY_PREFIX}{user_id}"

    def _acquire_sync(self, user_id: int, socket_id: str, limit: int) -> bool:
        now = time.time()
        args: list[float | str] = [now, limit, now + SLOT_SECONDS, socket_id, int(SLOT_SECONDS) + 1]
        try:
            return bool(self._acquire(keys=[self._key(user_id)], args=args))
        except Exception:
            logger.warning("could not count the user's sockets; letting this one in", exc_info=True)
            return True

    def _renew_sync(self, user_id: int, socket_id: str) -> None:
        pipe = self._redis.pipeline()
        pipe.zadd(self._key(user_id), {socket_id: time.time() + SLOT_SECONDS})
        pipe.expire(self._key(user_id), int(SLOT_SECONDS) + 1)
        pipe.execute()

    _MARKER_SECONDS = 3600  # a marker outlives its process by at most this

    def _touch_marker_sync(self, marker: str) -> bool:
        return bool(self._redis.expire(marker, self._MARKER_SECONDS))

    def _set_marker_sync(self, marker: str) -> None:
        self._redis.set(marker, 1, ex=self._MARKER_SECONDS)

    async def touch_marker(self, marker: str) -> bool:
        """Whether Redis still holds ``marker``, whose lifetime this extends; raises what Redis raises."""
        return await sync_to_async(self._touch_marker_sync, thread_sensitive=False)(marker)

    async def set_marker(self, marker: str) -> None:
        await sync_to_async(self._set_marker_sync, thread_sensitive=False)(marker)

    def _release_sync(self, user_id: int, socket_id: str) -> None:
        try:
            self._redis.zrem(self._key(user_id), socket_id)
        except Exception:  # the slot lapses within SLOT_SECONDS
            logger.warning("could not release a socket's slot", exc_info=True)

    def listening(self, user_ids: Iterable[int]) -> set[int]:
        ordered = sorted(user_ids)
        if not ordered:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        for user_id in ordered:
            pipe.zrangebyscore(self._key(user_id), f"({time.time()}", "+inf")
        pushed = PUSHED.encode()
        return {
            user_id
            for user_id, members in zip(ordered, pipe.execute(), strict=True)
            if any(member.startswith(pushed) for member in members)
        }

    async def acquire(self, user_id: int, socket_id: str, limit: int) -> bool:
        return await sync_to_async(self._acquire_sync, thread_sensitive=False)(user_id, socket_id, limit)

    async def renew(self, user_id: int, socket_id: str) -> None:
        await sync_to_async(self._renew_sync, thread_sensitive=False)(user_id, socket_id)

    async def release(self, user_id: int, socket_id: str) -> None:
        await sync_to_async(self._release_sync, thread_sensitive=False)(user_id, socket_id)


_slots_instance: _MemorySlots | _RedisSlots | None = None
_slots_lock = threading.Lock()


def _slots() -> _MemorySlots | _RedisSlots:
    global _slots_instance
    if _slots_instance is None:
        with _slots_lock:
            if _slots_instance is None:
                _slots_instance = _RedisSlots(settings.REDIS_URL) if settings.REDIS_URL else _MemorySlots()
    return _slots_instance
