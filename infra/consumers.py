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
never arrived (a push lost with the worker that held it). A page away longer than the journal keeps,
or ahead of it (Redis lost it), is sent ``{"type": "resync"}`` first (it reloads its books).
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
        if since is not None and since < newest:
            if not await database_sync_to_async(push.replay_complete)(user.pk, since):
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
            await self.channel_layer.group_discard(self.group, self.channel_name)
            WS_CLIENTS.labels("user").dec()

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
        socket has not forwarded, then the page's new sequence number."""
        cursor = self.cursor
        assert cursor is not None
        html, _numbers = await database_sync_to_async(push.replay)(self.socket.user_id, cursor.low, upto, cursor.seen())
        if self.socket.ended:
            return
        if html:
            await self.send(text_data=html)
        cursor.advance_to(upto)  # replayed, or beyond the log: nothing more can be had of them
        await self._send_seq()

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
