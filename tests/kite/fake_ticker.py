"""A fake Kite ticker on loopback, written from the public websocket documentation
(https://kite.trade/docs/connect/v3/websocket), for the feed's end-to-end tests.

It serves ``websockets`` on 127.0.0.1 in a thread of its own and behaves as the documentation says:

- the handshake must carry ``api_key`` and ``access_token`` in the query string (403 otherwise);
- text requests ``{"a": "subscribe"|"unsubscribe"|"mode", "v": ...}``; a newly subscribed token is in
  ``quote`` mode, and each request is answered with a frame of the tokens it named, in their mode
  (requests it cannot read get ``{"type": "error", "data": ...}``);
- binary frames built by the independent encoder in ``tests/kite/wire.py``; heartbeats of one byte;
  order updates and other text messages.

Faults on demand: ``drop()`` aborts every socket without a close frame, ``refuse_next(n)`` answers the
next n handshakes with HTTP 503, and ``send_raw`` / ``send_text`` put any bytes or text on the wire
(truncated packets, malformed JSON, error messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.kite import wire

API_KEY = "kitekey"
ACCESS_TOKEN = "token-of-the-day"


@dataclass
class FakeConnection:
    socket: ServerConnection
    query: dict[str, list[str]]
    modes: dict[int, str] = field(default_factory=dict)  # subscribed token -> mode
    requests: list = field(default_factory=list)
    closed: bool = False


class FakeTicker:
    def __init__(self, *, api_key: str = API_KEY, access_token: str = ACCESS_TOKEN) -> None:
        self.api_key = api_key
        self.access_token = access_token
        self.packets: dict[int, wire.Packet] = {}  # what each token's packet says now
        self.connections: list[FakeConnection] = []
        self.handshakes = 0
        self.refused = 0
        self._refuse = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kite-ticker", daemon=True)
        self._server = None
        self._stopped: asyncio.Event | None = None
        self.port = 0

    # Life cycle.

    def __enter__(self) -> FakeTicker:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake ticker did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._check_request, compression=None) as srv:
            self._server = srv
            self.port = srv.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()
            srv.close(close_connections=False)
            for connection in list(self.connections):
                connection.socket.transport.abort()

    def _check_request(self, connection: ServerConnection, request):
        self.handshakes += 1
        if self._refuse:
            self._refuse -= 1
            self.refused += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try later\n")
        query = parse_qs(urlsplit(request.path).query)
        if query.get("api_key") != [self.api_key] or query.get("access_token") != [self.access_token]:
            return connection.respond(HTTPStatus.FORBIDDEN, "invalid api_key or access_token\n")
        return None

    async def _handler(self, socket: ServerConnection) -> None:
        connection = FakeConnection(socket=socket, query=parse_qs(urlsplit(socket.request.path).query))
        self.connections.append(connection)
        try:
            async for message in socket:
                if isinstance(message, str):
                    await self._on_request(connection, message)
        except ConnectionClosed:
            pass
        finally:
            connection.closed = True

    async def _on_request(self, connection: FakeConnection, text: str) -> None:
        try:
            request = json.loads(text)
            action, value = request["a"], request["v"]
            if action == "mode":
                mode, tokens = value
                if mode not in ("ltp", "quote", "full"):
                    raise ValueError(mode)
            else:
                mode, tokens = "quote", value
            if action not in ("subscribe", "unsubscribe", "mode") or not all(isinstance(t, int) for t in tokens):
                raise ValueError(action)
        except (ValueError, KeyError, TypeError):
            await connection.socket.send(json.dumps({"type": "error", "data": "invalid message"}))
            return
        connection.requests.append(request)
        if action == "unsubscribe":
            for token in tokens:
                connection.modes.pop(token, None)
            return
        for token in tokens:
            if action == "subscribe":
                connection.modes.setdefault(token, "quote")
            elif token in connection.modes:
                connection.modes[token] = mode
        await self._send_frame(connection, tokens)

    # What a test calls (from its own thread).

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def open_connections(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.closed]

    def set_price(self, token: int, **fields) -> None:
        packet = self.packets.setdefault(token, wire.Packet(token=token, ltp=Decimal(0)))
        for name, value in fields.items():
            setattr(packet, name, value)

    def send_ticks(self, tokens: list[int] | None = None) -> None:
        """One frame per open connection with the given (default: all its) subscribed tokens."""

        async def send():
            for connection in self.open_connections():
                await self._send_frame(connection, tokens if tokens is not None else list(connection.modes))

        self._call(send())

    async def _send_frame(self, connection: FakeConnection, tokens: list[int]) -> None:
        packets = []
        for token in tokens:
            mode, packet = connection.modes.get(token), self.packets.get(token)
            if mode is None or packet is None:
                continue
            index = token % 256 == wire.SEGMENTS["INDICES"]
            if mode == "ltp":
                packets.append(wire.ltp_packet(packet))
            elif index:
                packets.append(wire.index_packet(packet, full=mode == "full"))
            else:
                packets.append(wire.quote_packet(packet, full=mode == "full"))
        if packets:
            with contextlib.suppress(ConnectionClosed):
                await connection.socket.send(wire.frame(*packets))

    def send_raw(self, data: bytes | str) -> None:
        async def send():
            for connection in self.open_connections():
                with contextlib.suppress(ConnectionClosed):
                    await connection.socket.send(data)

        self._call(send())

    def send_heartbeat(self) -> None:
        self.send_raw(wire.HEARTBEAT)

    def send_text(self, message: dict | str) -> None:
        self.send_raw(message if isinstance(message, str) else json.dumps(message))

    def send_order(self, **data) -> None:
        self.send_text({"type": "order", "data": data})

    def drop(self) -> None:
        """Abort every open socket, as a network failure would: no close frame."""

        async def abort():
            for connection in self.open_connections():
                connection.socket.transport.abort()

        self._call(abort())

    def refuse_next(self, count: int) -> None:
        self._refuse = count


def eventually(condition, *, timeout: float = 10.0, message: str = "condition") -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds (a generous bound, not a measure).
    A condition that reads the database while the feed's thread writes may meet SQLite's "table is
    locked" (its in-memory test database is shared, and a reader does not wait for a writer): not yet."""
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.01)


def _holds(condition) -> bool:
    from django.db import OperationalError

    try:
        return bool(condition())
    except OperationalError as error:
        if "locked" not in str(error):
            raise
        return False
