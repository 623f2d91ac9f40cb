"""The plumbing every broker family's local test server shares (``tests/families/<family>/server.py``):
REST on a ``ThreadingHTTPServer`` and the websockets on ``websockets`` servers (one per ``listeners``
entry, Dhan's two hosts being two) with an event loop of their own, each side in a thread, on
127.0.0.1 at ports the system picks; every request recorded as the
contract suite's ``Recorded``; faults queued per call (``fail_next``) and taken by the handler; the
open websockets, to send to and to drop; protocol violations, which fail ``stop()`` where the family
asks for it.

What differs stays in the family's server, behind these hooks:

- ``LocalHandler`` subclass: routes a request to a call name, validates it, answers in the family's
  envelope (``fault_answer`` gives the family's answer for each fault it answers instead of serving);
- ``ws_handshake`` (the handshake's check, a refusal or None), ``on_connect`` and ``on_message`` (what
  a websocket says and is sent), ``stream_for`` (the family's ``Stream`` with its per-socket state,
  its ``kind`` naming the socket list it belongs to: "market", "orders" ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Response, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from tests.brokers.contract.kit import FAULTS, Recorded


@dataclass(eq=False)
class Stream:
    """One open websocket: ``kind`` is the family's name for the list it is in ("market", "orders")."""

    socket: ServerConnection
    kind: str = ""
    closed: bool = False


class LocalServer:
    """A family's server: subclass it with ``handler_class`` (its ``LocalHandler``), ``name`` (said when
    the streams do not start), ``documented`` (said when ``stop`` finds violations) and the hooks."""

    name: ClassVar[str]
    documented: ClassVar[str] = ""  # "NorenOMS's documented format": stop() fails on violations
    # The websocket listeners, each on a port of its own (``ws_ports``); the first is ``ws_port``.
    listeners: ClassVar[tuple[str, ...]] = ("ws",)
    hang_seconds: float = 3.0

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.subscriptions: list[Any] = []
        self.streams: list[Stream] = []
        self.strict = True  # stop() fails on violations (where the family names ``documented``)
        self.ws_ports: dict[str, int] = {}
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._loop = asyncio.new_event_loop()
        self._ws_ready = threading.Event()
        self._ws_stopped: asyncio.Event | None = None
        self._ws_thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------------
    def handler_class(self) -> type[LocalHandler]:
        """The family's REST handler."""
        raise NotImplementedError

    def start(self) -> Self:
        """Both servers listening; raises RuntimeError when the websockets do not start in 10 s."""
        handler = type("Handler", (self.handler_class(),), {"local": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        self._http.block_on_close = False
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._ws_thread = threading.Thread(target=self._run_ws, name=f"{self.name}-ws", daemon=True)
        self._ws_thread.start()
        if not self._ws_ready.wait(10):
            raise RuntimeError(f"the {self.name} websocket server did not start")
        return self

    def stop(self, *, check: bool = True) -> None:
        """Stop both servers (a hanging answer is released); raises AssertionError when ``check``, the
        server is ``strict``, the family checks on stop (``documented``) and a request broke that format."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._ws_stopped is not None and self._ws_thread is not None and self._ws_thread.is_alive():
            self._loop.call_soon_threadsafe(self._ws_stopped.set)
            self._ws_thread.join(10)
        if check and self.strict and self.documented and self.violations:
            raise AssertionError(f"requests broke {self.documented}: " + "; ".join(self.violations))

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def url(self) -> str:
        """The REST root the broker's "api" endpoint points at (``root`` unless the family says)."""
        return self.root

    @property
    def ws_url(self) -> str:
        """The market-data websocket (``ws_root`` unless the family says)."""
        return self.ws_root

    @property
    def ws_port(self) -> int:
        return self.ws_ports.get(self.listeners[0], 0)

    def listener(self, socket: ServerConnection) -> str:
        """Which of ``listeners`` the socket came in on."""
        port = socket.local_address[1]
        return next(name for name, listening in self.ws_ports.items() if listening == port)

    @property
    def ws_root(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://127.0.0.1:{self.ws_port}"

    # --- requests, faults, violations ------------------------------------------------------------
    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def last(self, call: str) -> Recorded:
        """The latest request of ``call``; raises LookupError when there is none."""
        with self._lock:
            for recorded in reversed(self.requests):
                if recorded.call == call:
                    return recorded
        raise LookupError(f"no {call} request")

    def calls(self, call: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.call == call]

    def count(self, call: str) -> int:
        return len(self.calls(call))

    def fail_next(self, call: str, fault: str) -> None:
        """The next request of ``call`` gets ``fault``; raises ValueError for a fault not in the contract
        suite's ``FAULTS``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.setdefault(call, []).append(fault)

    def take_fault(self, call: str) -> str | None:
        """The fault queued for this request of ``call``, or None."""
        with self._lock:
            queue = self._faults.get(call)
            return queue.pop(0) if queue else None

    def violation(self, what: str) -> None:
        with self._lock:
            self.violations.append(what)

    def hang(self) -> None:
        """Wait ``hang_seconds`` (or until ``stop``): an answer that never comes in time."""
        self._stop.wait(self.hang_seconds)

    # --- websockets ------------------------------------------------------------------------------
    def ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """The family's refusal of a handshake (``connection.respond(...)``), or None to accept it."""
        return None

    def stream_for(self, socket: ServerConnection) -> Stream | None:
        """The ``Stream`` for a socket just opened; None closes it at once."""
        return Stream(socket=socket)

    async def on_connect(self, stream: Stream) -> None:
        """What the server does as a socket opens (a greeting); nothing by default."""

    async def on_message(self, stream: Stream, message: str | bytes) -> None:
        """A message a client sent; each family reads its own."""
        self.violation(f"{stream.kind or 'websocket'}: unexpected message {message!r:.80}")

    def open_streams(self, kind: str | None = None) -> list[Stream]:
        """The open sockets (of ``kind``)."""
        return [s for s in self.streams if not s.closed and (kind is None or s.kind == kind)]

    def send_all(self, message: str | bytes, which: str | Callable[[Stream], bool] | None = None) -> None:
        """Send ``message`` to every open socket of the kind ``which`` names (or that ``which`` accepts)."""
        accept = which if callable(which) else (lambda s: which is None or s.kind == which)

        async def send() -> None:
            for stream in self.open_streams():
                if accept(stream):
                    with contextlib.suppress(ConnectionClosed):
                        await stream.socket.send(message)

        self.call(send())

    def drop_streams(self) -> None:
        """Close every open socket abruptly (no close frame)."""

        async def abort() -> None:
            for stream in self.open_streams():
                stream.socket.transport.abort()

        self.call(abort())

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the websockets' loop and return its result (10 s at most)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def _run_ws(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve_ws())
        self._loop.close()

    async def _serve_ws(self) -> None:
        self._ws_stopped = asyncio.Event()
        async with contextlib.AsyncExitStack() as listening:
            servers = []
            for name in self.listeners:
                srv = await listening.enter_async_context(
                    serve(self._ws_session, "127.0.0.1", 0, process_request=self.ws_handshake, compression=None)
                )
                self.ws_ports[name] = srv.sockets[0].getsockname()[1]
                servers.append(srv)
            self._ws_ready.set()
            await self._ws_stopped.wait()
            for srv in servers:
                srv.close(close_connections=False)
            for stream in self.open_streams():
                stream.socket.transport.abort()

    async def _ws_session(self, socket: ServerConnection) -> None:
        stream = self.stream_for(socket)
        if stream is None:
            return
        self.streams.append(stream)
        try:
            await self.on_connect(stream)
            async for message in socket:
                await self.on_message(stream, message)
        except ConnectionClosed:
            pass
        finally:
            stream.closed = True


class LocalHandler(BaseHTTPRequestHandler):
    """The REST side: a subclass routes and answers (``do_GET`` ...); ``local`` is its server."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    local: LocalServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def header_map(self) -> dict[str, str]:
        """The request's headers, names in lower case."""
        return {k.lower(): v for k, v in self.headers.items()}

    def record(
        self, call: str, body: Any, raw: bytes, *, path: str | None = None, query: Mapping[str, str] | None = None
    ) -> Recorded:
        """Record this request as ``call`` (with its decoded ``body``; ``path`` and ``query`` where the
        family reads them otherwise than from the request line) and return the record."""
        split = urlsplit(self.path)
        recorded = Recorded(
            call=call,
            method=self.command,
            path=split.path if path is None else path,
            query=dict(parse_qsl(split.query)) if query is None else query,
            headers=self.header_map(),
            body=body,
            raw=raw,
        )
        self.local.record(recorded)
        return recorded

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        """The family's answer (status, body, content type) for ``fault`` in place of serving the
        request, or None for a fault that serves first ("timeout")."""
        return None

    def answer_fault(self, fault: str | None) -> bool:
        """Answer ``fault`` if it is one answered in place of serving; True when it was."""
        answer = None if fault is None else self.fault_answer(fault)
        if answer is None:
            return False
        self.send(*answer)
        return True

    def hang(self) -> None:
        """The "timeout" fault after serving: nothing is sent and the connection closes."""
        self.local.hang()
        self.close_connection = True

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # a client that gave up on the answer
            self.wfile.write(body)
