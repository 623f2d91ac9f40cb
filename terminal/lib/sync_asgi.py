"""An ASGI handler that runs the middleware and the view of a request in one call of a worker thread.

Django's own ASGIHandler builds the middleware chain in async mode. Every view here is synchronous,
and so is much of the middleware (ours, whitenoise, auditlog); in async mode Django bridges each
change of mode with ``sync_to_async``/``async_to_sync``, and every ``MiddlewareMixin`` middleware
run asynchronously hands its ``process_request`` and ``process_response`` to the worker thread one
at a time: about a dozen hops between the event loop and the thread per request, each costing the
web process CPU (futures, loop wake-ups, context copies) for no concurrency gained.

Here the chain is built in sync mode, exactly as under WSGI, and each request crosses to its
thread once, through the same thread-sensitive ``sync_to_async`` Django uses for a sync view
(``ThreadSensitiveContext`` per request: the request's code keeps one thread and one database
connection). Reading the body, the disconnect watch and sending the response stay on the loop.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    """ASGIHandler whose middleware chain and view run synchronously in one worker-thread call."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._get_response_in_thread = sync_to_async(self.get_response, thread_sensitive=True)

    async def get_response_async(self, request):
        return await self._get_response_in_thread(request)
