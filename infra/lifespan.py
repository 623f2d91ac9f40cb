"""A process's shutdown: the ASGI lifespan protocol, which uvicorn speaks to ``config.asgi`` in each
gunicorn worker (``config/serving.py``), and the drains that apps register to run when it stops.

An app whose process holds work that must leave before it exits (``orders.push``: the order changes
still queued in its push thread) registers a drain from its ``AppConfig.ready`` with
``register_drain``; this module imports no domain app. At shutdown the drains run for at most
``DRAIN_SECONDS`` together; what is left then is theirs to log, and is lost (the pages' next load
shows it). uvicorn sends the shutdown once it has stopped listening and its requests have finished,
so the changes those requests committed are queued by then. Celery workers (``config.celery``) and
the feed (``run_feed``) run the same drains when they stop.

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
# Within gunicorn's graceful_timeout (config/gunicorn.conf.py), after the requests in flight.
DRAIN_SECONDS = 10.0


async def application(scope: dict, receive, send) -> None:
    """The ``lifespan`` scope's application: nothing to start; run the registered drains at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(drain)
            await send({"type": "lifespan.shutdown.complete"})
            return


Drain = Callable[[float], bool]
_drains: dict[str, Drain] = {}


def register_drain(name: str, func: Drain) -> None:
    """Run ``func(timeout)`` when this process stops; it returns False when work was left undone
    (and says so in the log). Registering a name again replaces its drain."""
    _drains[name] = func


def drain(timeout: float | None = None) -> bool:
    """Run every registered drain within ``timeout`` seconds overall (default ``DRAIN_SECONDS``);
    return False when one of them left work undone."""
    timeout = DRAIN_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    done = True
    for index, (name, run) in enumerate(list(_drains.items())):
        # The first drain gets the whole time (its log says so exactly), the others what is left of it.
        remaining = timeout if index == 0 else max(0.0, deadline - time.monotonic())
        try:
            done = run(remaining) and done
        except Exception:  # one broken drain must not keep the others from running
            logger.warning("shutdown drain %s failed", name, exc_info=True)
            done = False
    return done
