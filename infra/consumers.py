"""The per-user websocket: every page opens one and receives server-rendered fragments.

Producers (order updates, RMS alerts) call ``infra.push.push_to_user``; this consumer only
authorises the socket and forwards what arrives on the user's group. The socket counts towards the
user's cap and closes when its session signs out or expires (4401) or the user's access changes
(4403): ``infra.sockets``.

Nothing journalled is lost to a page that opens its socket with ``?since=`` (``infra.push``'s
journal; empty: from now on): the socket sends ``{"type": "seq", "seq": N}`` when it opens and after
each push that moves it, N the number up to which the page holds every change; a page that
reconnects with ``?since=N`` first gets the current state of every change numbered after N; and
every ``GAP_CHECK_SECONDS`` the socket replays the numbers that were due at its previous check and
never arrived (a push lost with the worker that held it). A replay is announced by a
``{"type": "replay", "after": A, "upto": B, "changes": N}`` frame (pages ignore it; the soak's
clients count it) before its rows. A page away longer than the journal keeps, or ahead of it (Redis
lost it), is sent ``{"type": "resync"}`` first (it reloads its books); so is a page more than
``push.REPLAY_LIMIT`` changes behind, instead of a replay.

Replays are bounded: the sockets of one user in a process share one render at a time
(``_SharedReplays``): when the channel layer is behind, all of a user's sockets miss the same pushes,
and a database read and a render for each would add load where the process is already behind. A
render serves a socket when it covers the changes the socket missed and was made after the newest
change the socket was sent (``push.Replay.serves``), so a replay never shows a row older than one the
page already has.
Without ``since`` the socket only forwards pushes, as it always has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from infra import push, sockets
from infra.metrics import WS_CLIENTS

logger = logging.getLogger(__name__)

RECEIVE_RETRY_SECONDS = 1.0  # a socket whose channel cannot be read (Redis down) tries again this often
RESYNC = '{"type": "resync"}'
REPLAY_ATTEMPTS = 3  # renders a replay waits for before it leaves the changes to the next gap check
READ_ONLY_ERROR = '{"type": "error", "code": "read_only", "message": "this socket only pushes updates"}'


user_group = sockets.user_group  # where producers (infra.push, orders.push) have long found it


class UserConsumer(AsyncWebsocketConsumer):
    # Channels reads this consumer's channel through ``channel_receive``, set to the layer's receive
    # before it starts; read through ``_receive_retrying`` instead, so a lost Redis connection does not
    # end the socket with an error: it waits for Redis, whose lost groups ``infra.sockets`` restores.
    @property
    def channel_receive(self):
        return self._receive_retrying

    @channel_receive.setter
    def channel_receive(self, receive) -> None:
        self._layer_receive = receive

    async def _receive_retrying(self) -> dict:
        failing = False
        while True:
            try:
                return await self._layer_receive()
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    logger.warning("user socket: the channel layer cannot be read; retrying", exc_info=True)
                failing = True
                await asyncio.sleep(RECEIVE_RETRY_SECONDS)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        session = self.scope.get("session")
        self.socket = sockets.Socket(
            self, user_id=user.pk, session_key=session.session_key if session else None, carries_accounts=True
        )
        if not await self.socket.open():
            await self.accept()  # then close: a refused handshake would show the client no code nor reason
            await self.close(code=sockets.CLOSE_TOO_MANY, reason=self.socket.refusal)
            return
        self.group = user_group(user.pk)
        if settings.STANDALONE:  # the in-memory layer: pushes from other threads come through this loop
            push.serve_pushes_on(asyncio.get_running_loop())
        await self.socket.join(self.group, self.channel_name)  # joined again if Redis restarts empty
        WS_CLIENTS.labels("user").inc()
        await self.accept()
        # A page that speaks the journal's protocol says so with ``since`` (empty: from now on).
        self.cursor: push.Cursor | None = None
        asked, since = _since(self.scope)
        if not asked:
            return
        # Joined before reading the counter: a change numbered after it reaches this socket live.
        try:
            newest = await sync_to_async(push.current_seq, thread_sensitive=False)(user.pk)
        except Exception:
            logger.warning("could not read the user's push journal; no catching up on this socket", exc_info=True)
            return
        self.cursor = push.Cursor(newest if since is None or since > newest else since)
        _shared_replays(user.pk).sockets += 1
        if since is not None and since < newest:
            if newest - since <= push.REPLAY_LIMIT and not await database_sync_to_async(push.replay_complete)(
                user.pk, since
            ):
                await self.send(text_data=RESYNC)  # the log no longer holds all it missed: reload the books
            await self._replay(newest)
        elif since is not None and since > newest:  # Redis lost the journal: what the page missed is unknown
            await self.send(text_data=RESYNC)
            await self._send_seq()
        else:
            await self._send_seq()  # where the page stands, so its next connection asks from here
        self._gaps = asyncio.get_running_loop().create_task(self._watch_gaps(newest), name="push-gaps")

    async def disconnect(self, code: int) -> None:
        gaps = getattr(self, "_gaps", None)
        if gaps is not None:
            gaps.cancel()
        if hasattr(self, "socket"):
            await self.socket.close()
        if hasattr(self, "group"):
            try:
                await sockets.group_discard(self.channel_layer, self.group, self.channel_name)
            except Exception:  # Redis unreachable: the stale membership costs a dropped message, and expires
                logger.warning("could not leave the socket's group on disconnect", exc_info=True)
            WS_CLIENTS.labels("user").dec()
        if getattr(self, "cursor", None) is not None:
            _release_shared_replays(self.socket.user_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The socket is server-to-client; anything a client sends is answered with an error frame.
        if self.socket.ended:
            return
        await self.send(text_data=READ_ONLY_ERROR)

    async def user_push(self, event: dict) -> None:
        if self.socket.ended:  # closed for a sign-out or an access change: nothing more goes out
            return
        cursor = getattr(self, "cursor", None)
        seqs = event.get("seqs") or ()
        if cursor is not None and seqs and cursor.delivered(seqs):
            # A push the layer delivered late, after its changes were replayed in their current state:
            # forwarding it would show the page an older state than it already shows.
            return
        await self.send(text_data=event["html"])
        if cursor is not None and cursor.saw(seqs):
            await self._send_seq()

    async def _send_seq(self) -> None:
        if self.cursor is not None:
            await self.send(text_data=json.dumps({"type": "seq", "seq": self.cursor.low}))

    async def _replay(self, upto: int) -> None:
        """Send the current state of the journalled changes after the cursor up to ``upto`` that this
        socket has not forwarded, then the page's new sequence number; more than ``REPLAY_LIMIT`` of
        them: a resync instead (the page's reload of its books costs less than such a replay)."""
        cursor = self.cursor
        assert cursor is not None
        if upto - cursor.low > push.REPLAY_LIMIT:
            # The page reloads its books after this frame: they will show every change numbered up to
            # the counter now, so a push of one of those that comes late would show an older row.
            newest = await sync_to_async(push.current_seq, thread_sensitive=False)(self.socket.user_id)
            cursor.advance_to(max(upto, newest))
            await self.send(text_data=RESYNC)
            await self._send_seq()
            return
        for _attempt in range(REPLAY_ATTEMPTS):
            rendered = await _shared_replays(self.socket.user_id).render(self, cursor.low, max(upto, cursor.newest))
            if self.socket.ended:
                return
            # No await from here to the send: nothing is forwarded in between.
            if rendered.as_of < cursor.newest:
                continue  # a push newer than the render went out meanwhile: its rows may be newer
            # Everything the render holds goes out, not only what was due: its rows show the changes
            # numbered up to ``as_of``, and a push of one of those that comes late would show an older row.
            after, upto = cursor.low, max(upto, rendered.as_of)
            numbers = rendered.numbers(after, upto, cursor.seen())
            if numbers:
                frame = {"type": "replay", "after": after, "upto": upto, "changes": len(numbers)}
                await self.send(text_data=json.dumps(frame))
                await self.send(text_data=rendered.html(numbers))
            cursor.advance_to(upto)  # replayed, or beyond the log: nothing more can be had of them
            await self._send_seq()
            return
        logger.info("a replay stayed older than the pushes the socket forwarded; the next gap check tries again")

    async def _watch_gaps(self, due: int) -> None:
        """Every ``GAP_CHECK_SECONDS``: replay what was due at the previous check and never came."""
        while not self.socket.ended:
            await asyncio.sleep(push.GAP_CHECK_SECONDS)
            cursor = self.cursor
            assert cursor is not None
            try:
                if due > cursor.low:
                    await self._replay(due)
                due = await sync_to_async(push.current_seq, thread_sensitive=False)(self.socket.user_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("could not check the socket's pushes for gaps", exc_info=True)


def _since(scope: Mapping[str, Any]) -> tuple[bool, int | None]:
    """Whether the socket's query string has ``since``, and its number: the page's last sequence
    number (empty or not a number: None, the page starts from now)."""
    try:
        values = parse_qs(scope.get("query_string", b"").decode("ascii"), keep_blank_values=True).get("since")
    except UnicodeDecodeError:
        return False, None
    if not values:
        return False, None
    with contextlib.suppress(ValueError):
        since = int(values[0])
        if 0 <= since < 2**62:
            return True, since
    return True, None


class _SharedReplays:
    """The replays of one user's sockets in this process: one render at a time, each served to every
    socket it is new enough for (``push.Replay.serves``). Many sockets of a user fall behind together
    (the channel layer is behind for all of them), and a render each would multiply the load that put
    them behind."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.sockets = 0
        self.latest: push.Replay | None = None
        self._lock = asyncio.Lock()
        self._waiting: dict[int, int] = {}  # socket -> the number after which it needs changes

    async def render(self, socket: object, after: int, newest: int) -> push.Replay:
        """A render of the user's changes after ``after`` at least as new as change ``newest``."""
        self._waiting[id(socket)] = after
        try:
            async with self._lock:
                latest = self.latest
                if latest is None or not latest.serves(after, newest):
                    start = min(self._waiting.values())  # one render for every socket waiting for one
                    render = database_sync_to_async(push.render_replay)
                    latest = self.latest = await render(self.user_id, start)
                return latest
        finally:
            self._waiting.pop(id(socket), None)


_replays: dict[tuple[int, int], _SharedReplays] = {}  # (event loop, user) -> the user's sockets' replays


def _shared_replays(user_id: int) -> _SharedReplays:
    key = (id(asyncio.get_running_loop()), user_id)
    shared = _replays.get(key)
    if shared is None:
        shared = _replays[key] = _SharedReplays(user_id)
    return shared


def _release_shared_replays(user_id: int) -> None:
    key = (id(asyncio.get_running_loop()), user_id)
    shared = _replays.get(key)
    if shared is not None:
        shared.sockets -= 1
        if shared.sockets <= 0:
            del _replays[key]
