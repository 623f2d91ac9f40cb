"""The per-user websocket: every page opens one and receives server-rendered fragments.

Producers (order updates, RMS alerts) call ``infra.push.push_to_user``; this consumer only
authorises the socket and forwards what arrives on the user's group. The socket counts towards the
user's cap and closes when its session signs out or expires (4401) or the user's access changes
(4403): ``infra.sockets``.
"""

from __future__ import annotations

import asyncio
import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from infra import push, sockets
from infra.metrics import WS_CLIENTS

logger = logging.getLogger(__name__)

RECEIVE_RETRY_SECONDS = 1.0  # a socket whose channel cannot be read (Redis down) tries again this often
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

    async def disconnect(self, code: int) -> None:
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
        await self.send(text_data=event["html"])
