"""The per-user websocket: every page opens one and receives server-rendered fragments.

Producers (order updates, RMS alerts) call ``terminal.push.push_to_user``; this consumer only
authorises the socket and forwards what arrives on the user's group.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

from terminal.metrics import WS_CLIENTS

READ_ONLY_ERROR = '{"type": "error", "code": "read_only", "message": "this socket only pushes updates"}'


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


class UserConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        WS_CLIENTS.labels("user").inc()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            WS_CLIENTS.labels("user").dec()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The socket is server-to-client; anything a client sends is answered with an error frame.
        await self.send(text_data=READ_ONLY_ERROR)

    async def user_push(self, event: dict) -> None:
        await self.send(text_data=event["html"])
