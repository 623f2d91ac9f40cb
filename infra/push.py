"""Send a server-rendered fragment to every open page of one user.

Standalone mode's in-memory channel layer lives on the ASGI server's event loop: a push made on a
thread that is not serving a request (a Celery task of the in-process worker, a tick listener) cannot
reach it through ``async_to_sync``, which would run the send on an event loop of that thread's own.
So the user socket's consumer registers the server's loop (``serve_pushes_on``) and a push from a
thread outside it is handed to that loop. With the Redis layer (the full stack) nothing is registered
and every push is sent from the calling thread, as before.
"""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from infra.sockets import user_group
from infra.sync_asgi import REQUEST_THREAD_PREFIX

_server_loop: asyncio.AbstractEventLoop | None = None


def serve_pushes_on(loop: asyncio.AbstractEventLoop) -> None:
    """Hand the pushes made on threads outside ``loop`` to it (standalone mode's in-memory layer)."""
    global _server_loop
    _server_loop = loop


def push_to_user(user_id: int, html: str) -> None:
    """Deliver ``html`` (an hx-swap-oob fragment) to the user's sockets; a no-op if nobody listens."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "user.push", "html": html}
    loop = _server_loop
    if loop is not None and loop.is_running() and not _serving_requests():
        asyncio.run_coroutine_threadsafe(layer.group_send(user_group(user_id), message), loop)
        return
    async_to_sync(layer.group_send)(user_group(user_id), message)


def _serving_requests() -> bool:
    """Whether this thread serves a request (infra.sync_asgi's threads, named for it), from which
    asgiref's thread-sensitive calls reach the server's loop as they always have."""
    return threading.current_thread().name.startswith(REQUEST_THREAD_PREFIX)
