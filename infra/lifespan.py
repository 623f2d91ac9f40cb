"""A web process's start-up and shutdown: the ASGI lifespan protocol, which uvicorn speaks to
``terminal.asgi`` in each gunicorn worker (``terminal/serving.py``).

At shutdown the process pushes the order changes still queued in its push thread (``orders.push``),
for at most ``DRAIN_SECONDS``; what is left then is logged and lost (the pages' next load shows it).
uvicorn sends the shutdown once it has stopped listening and its requests have finished, so the
changes those requests committed are queued by then.

This is the hook that runs when gunicorn stops a uvicorn worker with SIGTERM: the worker resets
SIGTERM to the default action, uvicorn catches it for its own graceful shutdown and then raises it
again, so the process ends by the signal and neither gunicorn's ``worker_exit`` hook (which would
run when the worker returns) nor ``atexit`` handlers ever run.
"""

from __future__ import annotations

import asyncio
import logging

from orders import push

logger = logging.getLogger(__name__)
# Within gunicorn's graceful_timeout (terminal/gunicorn.conf.py), after the requests in flight.
DRAIN_SECONDS = 10.0


async def application(scope: dict, receive, send) -> None:
    """The ``lifespan`` scope's application: nothing to start; drain the push queue at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(drain_pushes)
            await send({"type": "lifespan.shutdown.complete"})
            return


def drain_pushes(timeout: float | None = None) -> bool:
    """Wait until the queued order changes have been pushed; log and return False on timeout."""
    timeout = DRAIN_SECONDS if timeout is None else timeout
    if push.flush(timeout=timeout):
        return True
    logger.warning("order changes were still queued after %.1f s of shutdown; they are not pushed", timeout)
    return False
