"""Send a server-rendered fragment to every open page of one user."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from infra.consumers import user_group


def push_to_user(user_id: int, html: str) -> None:
    """Deliver ``html`` (an hx-swap-oob fragment) to the user's sockets; a no-op if nobody listens."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": "user.push", "html": html})
