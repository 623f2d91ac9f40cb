"""A process's start-up and shutdown: the ASGI lifespan protocol, which uvicorn speaks to
``terminal.asgi`` in each gunicorn worker (``terminal/serving.py``), and the drain every stopping
process runs (web workers, Celery workers, the feed).

At shutdown the process pushes what is still queued for the browsers, for at most ``DRAIN_SECONDS``;
what is left then is logged and lost (the pages' next load shows it). Apps register what to drain
from their ``AppConfig.ready`` (``register_drain``: the order changes of ``orders.push``), so this
module, and every process that stops through it, imports no domain app. uvicorn sends the shutdown
once it has stopped listening and its requests have finished, so the changes those requests committed
are queued by then.

This is the hook that runs when gunicorn stops a uvicorn worker with SIGTERM: the worker resets
SIGTERM to the default action, uvicorn catches it for its own graceful shutdown and then raises it
again, so the process ends by the signal and neither gunicorn's ``worker_exit`` hook (which would
run when the worker returns) nor ``atexit`` handlers ever run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)
# Within gunicorn's graceful_timeout (terminal/gunicorn.conf.py), after the requests in flight.
DRAIN_SECONDS = 10.0

# name -> flush(timeout) returning False when something was still queued at the timeout
Drain = Callable[[float], bool]
_drains: dict[str, Drain] = {}


def register_drain(name: str, drain: Drain) -> None:
    """Call ``drain(timeout)`` when the process stops; a second call with ``name`` replaces it."""
    _drains[name] = drain


async def application(scope: dict, receive, send) -> None:
    """The ``lifespan`` scope's application: nothing to start; drain the push queues at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(drain_pushes)
            await send({"type": "lifespan.shutdown.complete"})
            return


def drain_pushes(timeout: float | None = None) -> bool:
    """Wait until what the registered drains hold has been pushed, all within ``timeout``; log each one
    that timed out and return False if any did."""
    timeout = DRAIN_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    drained = True
    for name, drain in list(_drains.items()):
        if not drain(max(deadline - time.monotonic(), 0.0)):
            logger.warning("%s were still queued after %.1f s of shutdown; they are not pushed", name, timeout)
            drained = False
    return drained
