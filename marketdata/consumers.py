"""``/ws/ticks/``: live quotes for the instruments a client subscribes to, conflated per frame.

Protocol (text frames, JSON from the client):
- connect with ``?format=html`` (default: hx-swap-oob fragments for the watchlist), ``?format=json``,
  or ``?format=depth`` (each subscribed instrument's market depth panel, ``marketdata.depth``, read
  from the quote store once a frame for the instruments that changed);
- ``{"action": "subscribe", "instruments": [12, "NSE:RELIANCE"]}`` answers
  ``{"type": "subscribed", "instruments": [...ids], "count": n}`` and then the current quotes;
- ``{"action": "unsubscribe", "instruments": [...]}`` answers ``{"type": "unsubscribed", ...}``;
- updates arrive at most once per frame: JSON ``{"type": "quotes", "quotes": [...]}`` or the
  concatenated fragments;
- a bad message gets ``{"type": "error", "code", "message", "extra"}`` and the socket stays open:
  ``malformed_frame`` (not JSON, nested too deep, a reference that is not an id a row can have or a
  short ``EXCHANGE:SYMBOL`` free of NUL and lone surrogates), ``unknown_action``,
  ``unknown_instrument`` (naming them; nothing is subscribed), ``subscription_limit``
  (``MARKETDATA_MAX_SUBSCRIPTIONS`` per socket, default 500).
An unauthenticated socket is closed with code 4401; an unknown format with 4400; the socket beyond the
user's ``WEBSOCKET_MAX_PER_USER`` with 4429; an open socket whose session signs out or expires (or
whose user is deactivated or changes password) with 4401 (``infra.sockets``).

The consumer only authorises, tracks its subscriptions and writes; the hub (marketdata.fanout) does
the rendering. When the socket cannot take more, pending updates stay in one dict keyed by
instrument, newer values replacing older ones: under uvicorn an ASGI ``send`` waits while the
client's transport buffer is above its high-water mark, so the consumer's flush waits with at most
one frame in hand; under Daphne ``send`` never waits, and ``_WriteGate`` stops the flush instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from infra import sockets
from marketdata import metrics
from marketdata.depth import depth_html
from marketdata.fanout import Payload, html_frame, hub, json_frame
from marketdata.quotes import get_quotes
from marketdata.selectors import instrument_resolve

FORMATS = ("html", "json", "depth")


class _WriteGate:
    """Tells whether the client's socket can take another frame.

    Under Daphne the ASGI ``send`` only appends to Twisted's write buffer, which would grow without
    bound for a client that stops reading. Registering as the connection's streaming producer makes
    Twisted call ``pauseProducing`` when its buffer passes 64 KiB and ``resumeProducing`` when it has
    drained, so the consumer stops writing (and conflates) while the client is behind. Elsewhere the
    gate stays open: under uvicorn the ``send`` itself waits while the transport's buffer is full, so
    the flush task waits and the pending dict conflates meanwhile; the test communicator never fills.
    """

    def __init__(self, on_resume) -> None:
        self.paused = False
        self._on_resume = on_resume
        self._protocol = None

    def attach(self, base_send) -> None:
        protocol = getattr(base_send, "args", (None,))[0] if hasattr(base_send, "args") else None
        if protocol is None or not hasattr(protocol, "registerProducer"):
            return
        try:
            from twisted.internet.interfaces import IPushProducer
            from zope.interface import directlyProvides

            directlyProvides(self, IPushProducer)
            protocol.registerProducer(self, True)
            self._protocol = protocol
        except Exception:  # another producer, or the connection already gone: fall back to no gate
            self._protocol = None

    def detach(self) -> None:
        if self._protocol is not None:
            with contextlib.suppress(Exception):  # the transport may be gone already: nothing to release
                self._protocol.unregisterProducer()
            self._protocol = None

    # IPushProducer
    def pauseProducing(self) -> None:  # Twisted's interface names
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._on_resume()

    def stopProducing(self) -> None:
        self.paused = True


class TickConsumer(AsyncWebsocketConsumer):
    format = "html"
    # No channel-layer channel: the hub, not group messages, feeds this socket. With one, every socket
    # of the full stack kept a Redis receive of its own waiting, and one that timed out under load
    # closed its socket.
    channel_layer_alias = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        query = parse_qs((self.scope.get("query_string") or b"").decode("latin-1"))
        fmt = (query.get("format") or ["html"])[0]
        if fmt not in FORMATS:
            await self.accept()
            await self._error("unknown_format", f"format {fmt!r} is not one of html, json, depth", {"format": fmt})
            await self.close(code=4400)
            return
        session = self.scope.get("session")
        socket = sockets.Socket(
            self, user_id=user.pk, session_key=session.session_key if session else None, carries_accounts=False
        )
        if not await socket.open():
            await self.accept()  # then close: a refused handshake would show the client no code nor reason
            await self._error("too_many_sockets", socket.refusal, {"limit": settings.WEBSOCKET_MAX_PER_USER})
            await self.close(code=sockets.CLOSE_TOO_MANY, reason=socket.refusal)
            return
        self.socket = socket
        self.format = fmt
        self.subscriptions: set[int] = set()
        self.pending: dict[int, Payload] = {}
        self._flushing: asyncio.Task | None = None
        self._gate = _WriteGate(self.wake)
        self._hub = hub()
        self._hub.ensure_running()
        metrics.WS_CLIENTS.inc()
        await self.accept()  # once counted and registered, so that an open socket is always both
        self._gate.attach(self.base_send)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "socket"):
            await self.socket.close()
        if not hasattr(self, "_hub"):
            return
        self._hub.unsubscribe(self, self.subscriptions)
        self.subscriptions.clear()
        self.pending.clear()
        self._gate.detach()
        if self._flushing is not None:
            self._flushing.cancel()
        metrics.WS_CLIENTS.dec()
        del self._hub

    # --- client messages -----------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = _parse(text_data)
        if message is None:
            await self._error(
                "malformed_frame",
                'expected a JSON object like {"action": "subscribe", "instruments": [12, "NSE:RELIANCE"]}',
            )
            return
        action, refs = message
        if action not in {"subscribe", "unsubscribe"}:
            await self._error("unknown_action", f"action {action!r} is not subscribe or unsubscribe")
            return
        limit = settings.MARKETDATA_MAX_SUBSCRIPTIONS
        if len(refs) > limit:
            await self._limit_error(limit)
            return
        resolved, unknown = await database_sync_to_async(instrument_resolve)(refs)
        if unknown:
            await self._error(
                "unknown_instrument",
                "unknown instrument" + ("s " if len(unknown) > 1 else " ") + ", ".join(map(str, unknown)),
                {"instruments": unknown},
            )
            return
        ids = set(resolved.values())
        if action == "unsubscribe":
            self._hub.unsubscribe(self, ids & self.subscriptions)
            self.subscriptions -= ids
            for instrument_id in ids:
                self.pending.pop(instrument_id, None)
            remaining = len(self.subscriptions)
            await self._send_json({"type": "unsubscribed", "instruments": sorted(ids), "count": remaining})
            return
        new = ids - self.subscriptions
        if len(self.subscriptions) + len(new) > limit:
            await self._limit_error(limit)
            return
        self.subscriptions |= new
        self._hub.subscribe(self, new)
        await self._send_json({"type": "subscribed", "instruments": sorted(ids), "count": len(self.subscriptions)})
        snapshot = await database_sync_to_async(get_quotes)(sorted(new))
        for instrument_id, quote in snapshot.items():
            self.pending[instrument_id] = Payload(quote, live=False)
        self.wake()

    async def _limit_error(self, limit: int) -> None:
        await self._error(
            "subscription_limit",
            f"a socket may subscribe to at most {limit} instruments",
            {"limit": limit, "subscribed": len(self.subscriptions)},
        )

    async def _error(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        await self._send_json({"type": "error", "code": code, "message": message, "extra": extra or {}})

    async def _send_json(self, data: dict[str, Any]) -> None:
        if hasattr(self, "socket") and self.socket.ended:  # closed for a sign-out: nothing more goes out
            return
        await self.send(text_data=json.dumps(data, separators=(",", ":")))

    # --- the hub's side (Subscriber) -----------------------------------------------------------------
    def wake(self) -> None:
        if self.pending and not self._gate.paused and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending and not self._gate.paused and not self.socket.ended:
            payloads = list(self.pending.values())
            self.pending = {}
            if self.format == "depth":
                text = await self._depth_frame(payloads)
            else:
                text = json_frame(payloads) if self.format == "json" else html_frame(payloads)
            try:
                await self.base_send({"type": "websocket.send", "text": text})  # self.send(text_data=) less two calls
            except OSError:  # the client went away (uvicorn's ClientDisconnected); disconnect() follows
                self.pending.clear()
                return
            live = [p.ts for p in payloads if p.live]
            if live:
                metrics.FANOUT_LAG.observe(max(time.time() - min(live), 0.0))

    async def _depth_frame(self, payloads: list[Payload]) -> str:
        """The depth panels of the changed instruments, from the full quotes in the store (a few: one
        socket shows the depth of the instrument a ticket or an expanded row has open)."""
        ids = [p.quote.instrument_id for p in payloads]
        quotes = await database_sync_to_async(get_quotes)(ids)
        return "".join(depth_html(i, quotes.get(i)) for i in ids)


MAX_REFERENCE_LENGTH = 64  # "EXCHANGE:TRADINGSYMBOL"; the longest real one is under 40
MAX_ID = 2**63 - 1


def _reference_ok(ref: object) -> bool:
    """An instrument id a row can have, or a short ``EXCHANGE:SYMBOL`` that a database and a UTF-8
    frame can both carry (no NUL, no lone surrogate)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return 0 < ref <= MAX_ID
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REFERENCE_LENGTH or "\x00" in ref:
        return False
    return _encodable(ref)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse(text: str | None) -> tuple[str, list[int | str]] | None:
    """Return (action, instrument references) or None when the frame is not a well-formed message."""
    if not text:
        return None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return None
    if not isinstance(message, dict) or not isinstance(message.get("action"), str):
        return None
    if not _encodable(message["action"]):
        return None
    refs = message.get("instruments")
    if not isinstance(refs, list) or not refs:
        return None
    if not all(_reference_ok(r) for r in refs):
        return None
    return message["action"], refs
