"""An ASGI handler that runs the middleware and the view of a request in one call of a worker thread.

Django's own ASGIHandler builds the middleware chain in async mode. Every view here is synchronous,
and so is much of the middleware (ours, whitenoise, auditlog); in async mode Django bridges each
change of mode with ``sync_to_async``/``async_to_sync``, and every ``MiddlewareMixin`` middleware
run asynchronously hands its ``process_request`` and ``process_response`` to the worker thread one
at a time: about a dozen hops between the event loop and the thread per request, each costing the
web process CPU (futures, loop wake-ups, context copies) for no concurrency gained.

Here the chain is built in sync mode, exactly as under WSGI, and each request crosses to its
thread once: the ``request_started`` receivers, the chain and view and the response's close (which
sends ``request_finished``) run in one call, through the same thread-sensitive ``sync_to_async``
Django uses for a sync view
(``ThreadSensitiveContext`` per request: the request's code keeps one thread and one database
connection). Reading the body and sending the response stay on the loop.

The request's thread comes from a pool kept by the process. Django's handler gives every request a
``ThreadSensitiveContext`` of its own, whose executor starts a new thread for the request and joins
it at the end: starting, handing over to and joining a thread per request was about a tenth of a
web process's CPU under load (py-spy on bench/orders.py). Here each request borrows an idle
single-thread executor (asgiref's ``ThreadSensitiveContext(executor=...)``), keeps it for all its
thread-sensitive calls (the request signals, the chain and view, closing the response) and gives it
back when it is done, so threads, and their persistent database connections when there is no pool,
are reused. A request never shares its thread with another while it runs.

The chain and view run inside one of the process's request slots (``WEB_THREADS``,
``infra/request_slots.py``): a request waits for one before its Python runs.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

from infra import request_slots

IDLE_THREADS = 64  # idle request threads a process keeps; more than that are stopped when handed back


class RequestThreads:
    """Single-thread executors lent to one request at a time and reused."""

    def __init__(self, idle_limit: int = IDLE_THREADS) -> None:
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()  # the pool is used from the event loop, but cheaply kept honest
        self._idle_limit = idle_limit
        self.started = 0  # executors made so far (tests, diagnostics)

    def borrow(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.started += 1
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def close(self) -> None:
        """Close the idle threads' database connections and stop the threads."""
        from django.db import connections

        with self._lock:
            idle, self._idle = self._idle, []
        for executor in idle:
            executor.submit(connections.close_all).result()
            executor.shutdown()

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self._idle_limit:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)


class SyncChainASGIHandler(ASGIHandler):
    """ASGIHandler whose middleware chain and view run synchronously in one worker-thread call."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._respond_in_thread = sync_to_async(self._respond, thread_sensitive=True)
        self.threads = RequestThreads()
        self.slots = request_slots.slots()

    async def handle(self, scope, receive, send):
        """Read the body on the loop, then make the response in one call of the request's thread
        (``_respond``), then send it. Django's own ``handle`` crosses to the thread three times (the
        ``request_started`` receivers, the chain, closing the response) and watches for a disconnect
        in a task of its own, which only an async view could act on."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await self._respond_in_thread(scope, body_file)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the response was being sent
            finally:
                if response.streaming:  # closed once its content has been sent
                    await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        """``request_started``, the request, the chain and view (in a slot), and, unless the response
        streams, its close (``request_finished``: the thread's database connection is given back
        before the response is sent). Returns the response."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            with self.slots.held():
                response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]  # set as Django's ASGIHandler does; undeclared in the stubs
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the server chunks the body
        if not response.streaming:  # type: ignore[union-attr]  # no request: create_request returned a response
            response.close()  # type: ignore[union-attr]  # (mypy loses that pairing when the tuple is unpacked)
        return response

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.borrow()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)
