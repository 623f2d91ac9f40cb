"""The ASGI application that serves HTTP: Django's WSGI handler, run in one call of a worker thread.

Every view here is synchronous, and so is much of the middleware (ours, whitenoise, auditlog).
Django's ASGI handler builds the middleware chain in async mode and bridges each change of mode with
``sync_to_async``/``async_to_sync``: about a dozen hops between the event loop and a thread per
request, each costing the web process CPU (futures, loop wake-ups, context copies) for no
concurrency gained. Django's WSGI handler (``get_wsgi_application()``) builds the same chain in sync
mode; this module serves it to the ASGI server (uvicorn, Daphne) as a WSGI server would, through
public interfaces only (PEP 3333, Django's WSGI handler and ``HttpResponse.streaming``, asgiref's
``sync_to_async`` and ``ThreadSensitiveContext``):

- the body is read on the event loop (into a file that rolls over to disk past
  ``FILE_UPLOAD_MAX_MEMORY_SIZE``, as Django's ASGI handler does);
- one thread-sensitive ``sync_to_async`` call runs the WSGI handler (the ``request_started``
  receivers, the chain and view) inside one of the process's request slots (``WEB_THREADS``,
  ``infra/request_slots.py``), reads the response's content and closes it (``request_finished``: the
  thread's database connection is given back before the response is sent);
- the response is sent on the loop. A streaming response is read in the request's thread a batch at
  a time (at least ``STREAM_BATCH`` bytes, or the end), so an export of many small rows does not
  cross to the thread once per row, and closed once its content has been sent.

Because the call is thread-sensitive, code that calls back into async code (``async_to_sync``, such
as a push through standalone mode's in-memory channel layer) reaches the server's event loop.

The request's thread comes from a pool kept by the process. Each request borrows an idle
single-thread executor (asgiref's documented ``ThreadSensitiveContext(executor=...)``), keeps it for
all its thread-sensitive calls and gives it back when it is done, so threads, and their persistent
database connections when there is no pool, are reused: starting, handing over to and joining a
thread per request, as Django's ASGI handler does, was about a tenth of a web process's CPU under
load (py-spy on bench/orders.py). A request never shares its thread with another while it runs.

Requests reach views as ``WSGIRequest`` (``request.META`` as under any WSGI server: the ASGI scope's
client, server and headers, a header whose name has an underscore dropped as Django's ASGI handler
drops it).
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.wsgi import get_wsgi_application

from infra import request_slots

REQUEST_THREAD_PREFIX = "request"  # the request threads' names (infra.push tells them from other threads)
IDLE_THREADS = 64  # idle request threads a process keeps; more than that are stopped when handed back
STREAM_BATCH = 64 * 1024  # bytes of a streaming response read in one call of the request's thread


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
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=REQUEST_THREAD_PREFIX)

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


class SyncChainASGIHandler:
    """ASGI application (HTTP) serving Django's WSGI handler; each request crosses to its thread once."""

    def __init__(self) -> None:
        self.wsgi = get_wsgi_application()
        self._respond_in_thread = sync_to_async(self._respond, thread_sensitive=True)
        self._read_in_thread = sync_to_async(_read_batch, thread_sensitive=True)
        self._close_in_thread = sync_to_async(_close, thread_sensitive=True)
        self.threads = RequestThreads()
        self.slots = request_slots.slots()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before its request was complete
        executor = self.threads.borrow()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self._handle(scope, body, send)
        finally:
            self.threads.give_back(executor)
            body.close()

    async def _handle(self, scope, body, send) -> None:
        status, headers, content, streaming = await self._respond_in_thread(_environ(scope, body))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if streaming is None:
            await send({"type": "http.response.body", "body": content})
            return
        response, chunks = streaming
        try:
            while batch := await self._read_in_thread(chunks):
                await send({"type": "http.response.body", "body": batch, "more_body": True})
            await send({"type": "http.response.body"})
        finally:
            await self._close_in_thread(response)

    def _respond(self, environ: dict):
        """Run the WSGI handler in a request slot; return the status, the headers, and either the whole
        content (the response closed) or, for a streaming response, the response (left open) and its
        iterator."""
        started: list = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            started[:] = [int(status.split(" ", 1)[0]), [(k.encode("latin1"), v.encode("latin1")) for k, v in headers]]
            return _no_write  # Django's handler never calls write()

        with self.slots.held():
            response = self.wsgi(environ, start_response)
        status, headers = started
        if getattr(response, "streaming", False):
            return status, headers, b"", (response, iter(response))
        try:
            return status, headers, b"".join(response), None
        finally:
            _close(response)


async def _read_body(receive):
    """Return the request's body as a file positioned at its start, or None if the client went away."""
    body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")  # noqa: SIM115  (closed by the caller once the response is sent)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.close()
            return None
        body.write(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body.seek(0)
    return body


def _environ(scope: dict, body) -> dict:
    """The PEP 3333 environ of an ASGI HTTP scope."""
    script_name = scope.get("root_path", "")
    path = scope["path"]
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    server = scope.get("server") or ("unknown", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name.encode("utf-8").decode("latin1"),
        "PATH_INFO": path.encode("utf-8").decode("latin1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] if server[1] is not None else 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = environ["REMOTE_HOST"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1").lower()
        if "_" in name:  # "X_Forwarded_For" must not pass for "X-Forwarded-For"
            continue
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        headers.setdefault(key, []).append(raw_value.decode("latin1"))
    for key, values in headers.items():
        environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(values)
    if "CONTENT_LENGTH" not in environ:  # a chunked body: the server has read all of it
        body.seek(0, 2)
        environ["CONTENT_LENGTH"] = str(body.tell())
        body.seek(0)
    return environ


def _read_batch(chunks) -> bytes:
    """The next ``STREAM_BATCH`` bytes or more of a streaming response (fewer at its end, b"" after)."""
    batch = bytearray()
    for chunk in chunks:
        batch += chunk
        if len(batch) >= STREAM_BATCH:
            break
    return bytes(batch)


def _close(response) -> None:
    close = getattr(response, "close", None)
    if close is not None:
        close()


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the WSGI write() callable is not supported")
