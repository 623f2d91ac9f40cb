"""XTS's two Socket.IO streams as ``brokers.families.stream`` dialects, framed by hand over the plain
websocket transport: market data (``/apimarketdata/socket.io``) and order updates
(``/interactive/socket.io``).

The framing is Engine.IO 3 / Socket.IO 2, the protocol of the SDK's pinned client
(python-socketio 4.6, python-engineio 3.13; symphonyfintech/xts-pythonclient-api-sdk requirements.txt):

- the handshake is the websocket URL's query: ``token``, ``userID``, ``publishFormat=JSON``,
  ``broadcastMode=Full`` (market data) or ``apiType=INTERACTIVE`` (orders), ``EIO=3``,
  ``transport=websocket`` (MarketDataSocketClient.py, InteractiveSocketClient.py);
- the server opens with ``0{"sid",...,"pingInterval","pingTimeout"}`` and, Socket.IO 2 joining the
  default namespace by itself, ``40``; events arrive as ``42["<event>", <data>]`` where the data is a
  JSON text (the SDK concatenates it to a string) or an object;
- in Engine.IO 3 the client pings: ``2`` every ``heartbeat_interval`` (under the server's 25 s
  ``pingInterval``), answered ``3``; a server ping (``2``, as Engine.IO 4 servers send) is answered
  ``3`` through ``Decoded.replies``.

Market data is subscribed over REST, not the socket: ``POST /apimarketdata/instruments/subscription``
``{"instruments": [{"exchangeSegment": 1, "exchangeInstrumentID": 2885}], "xtsMessageCode": 1501}``
(Connect.py ``send_subscription``), made by the dialect's ``subscribe`` (which so sends nothing on the
socket) when the socket opens, after every reconnect and for instruments added while open. A
subscription XTS answers "already subscribed" counts as done; one that fails is retried with each
heartbeat. Events decoded: ``1501-json-full`` (touchline), ``1502-json-full`` (depth with its
touchline), ``1512-json-full`` (last traded price); the ``-partial`` forms (``broadcastMode=Partial``,
never asked for) and the other codes (1505 candles, 1510 open interest) are ignored. Times are
seconds since 1980-01-01 00:00 IST (the exchanges' epoch).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from brokers.adapters.base import BrokerError
from brokers.families.stream import Decoded, MalformedFrame, StreamTick
from brokers.families.wire import decode_json
from families.xts.mapping import SEGMENT_NUMBERS, parse_token, token_of
from families.xts.records import dec, qty
from marketdata.quotes import DepthLevel

logger = logging.getLogger(__name__)

FAMILY = "xts"
EIO = "3"
HEARTBEAT = 20.0  # seconds: under XTS's 25 s pingInterval
TOUCHLINE, DEPTH, LTP = 1501, 1502, 1512
EPOCH_1980_IST = 315_513_000  # 1980-01-01 00:00 IST in Unix seconds
SUBSCRIBE_BATCH = 50
_EVENT = re.compile(r"(\d{4})-json-(full|partial)")
_MAX_DEPTH = 20


# --- Engine.IO / Socket.IO framing --------------------------------------------------------------
def socketio_url(root: str, path: str, query: Mapping[str, str]) -> str:
    """The websocket URL of a Socket.IO endpoint at ``path`` under ``root`` (ws:// or wss://) with the
    handshake's query, Engine.IO 3 over the websocket transport."""
    return f"{root.rstrip('/')}{path}?{urlencode({**query, 'EIO': EIO, 'transport': 'websocket'})}"


def event_of(message: str | bytes) -> tuple[str, list[Any]] | Decoded:
    """One Engine.IO packet: a Socket.IO event as (name, arguments), or what the packet asks of us
    (a pong for a ping; nothing for open, connect, noop). Raises MalformedFrame for anything else."""
    if isinstance(message, bytes):
        raise MalformedFrame("XTS's JSON streams send text packets")
    if not message:
        raise MalformedFrame("an empty packet")
    kind, rest = message[0], message[1:]
    if kind == "0":  # open: the handshake's answer
        _object(rest, "the open packet")
        return Decoded()
    if kind == "2":  # a server's ping (Engine.IO 4): answered with a pong carrying its payload
        return Decoded(replies=["3" + rest])
    if kind in "136" and len(kind) == 1:  # close, pong, noop
        return Decoded()
    if kind != "4" or not rest:
        raise MalformedFrame("not an Engine.IO packet")
    packet, body = rest[0], rest[1:]
    if packet in "01" and len(packet) == 1:  # the namespace joined or left
        return Decoded()
    if packet == "4":
        logger.warning("xts stream: the server refused the namespace (%s)", body[:200])
        return Decoded()
    if packet != "2":
        raise MalformedFrame("not a Socket.IO event")
    if body.startswith("/"):  # a namespace, up to the comma
        _, comma, body = body.partition(",")
        if not comma:
            raise MalformedFrame("a namespace without its comma")
    body = body.lstrip("0123456789")  # an acknowledgement id
    try:
        data = decode_json(body.encode())
    except (ValueError, RecursionError):
        raise MalformedFrame("the event is not JSON") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise MalformedFrame("an event is [name, data...]")
    return data[0], data[1:]


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        data = decode_json(text.encode())
    except (ValueError, RecursionError):
        raise MalformedFrame(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedFrame(f"{what} is not an object")
    return data


def payload_of(args: list[Any], what: str) -> dict[str, Any]:
    """An event's data: a JSON text (as XTS sends it) or an object."""
    if not args:
        raise MalformedFrame(f"{what} carries no data")
    data = args[0]
    if isinstance(data, str):
        return _object(data, what)
    if isinstance(data, dict):
        return data
    raise MalformedFrame(f"{what} is not an object")


# --- market data -----------------------------------------------------------------------------------
def xts_time(value: Any) -> datetime | None:
    """An XTS market-data time (seconds since 1980-01-01 IST) as aware UTC; None when absent or absurd."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or not 0 < value < 2**32:
        return None
    return datetime.fromtimestamp(int(value) + EPOCH_1980_IST, tz=UTC)


def _price(value: Any, what: str) -> Decimal | None:
    try:
        price = dec(value)
    except (TypeError, ValueError):
        raise MalformedFrame(f"{what} is not a price") from None
    if price is not None and (price < 0 or price > Decimal("1e9")):
        raise MalformedFrame(f"{what} is out of range")
    return price


def _count(value: Any, what: str) -> int:
    try:
        number = qty(value)
    except (TypeError, ValueError):
        raise MalformedFrame(f"{what} is not a quantity") from None
    if number < 0 or number > 10**15:
        raise MalformedFrame(f"{what} is out of range")
    return number


def _level(item: Any) -> DepthLevel | None:
    if not isinstance(item, dict):
        raise MalformedFrame("a depth level is an object")
    price = _price(item.get("Price"), "a depth price")
    if not price:
        return None  # an empty level
    return DepthLevel(
        price, _count(item.get("Size"), "a depth size"), _count(item.get("TotalOrders", 1), "orders") or 1
    )


def _levels(items: Any) -> tuple[DepthLevel, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise MalformedFrame("depth is a list")
    return tuple(level for level in (_level(item) for item in items[:_MAX_DEPTH]) if level is not None)


def tick_from(payload: Mapping[str, Any]) -> StreamTick:
    """A 1501 (touchline), 1502 (depth) or 1512 (LTP) message, from the stream or a quote's
    ``listQuotes``, as a tick of the family's token. Raises MalformedFrame for one out of shape."""
    try:
        token = token_of(payload["ExchangeSegment"], payload["ExchangeInstrumentID"])
    except (KeyError, TypeError, ValueError):
        raise MalformedFrame("a market message names no instrument") from None
    touch = payload.get("Touchline", payload)
    if not isinstance(touch, dict):
        raise MalformedFrame("Touchline is an object")
    if "LastTradedPrice" not in touch:
        raise MalformedFrame("a market message without LastTradedPrice")
    bid, ask = touch.get("BidInfo"), touch.get("AskInfo")
    best_bid = _level(bid) if bid is not None else None
    best_ask = _level(ask) if ask is not None else None
    bids, asks = _levels(payload.get("Bids")), _levels(payload.get("Asks"))
    best_bid = best_bid or (bids[0] if bids else None)
    best_ask = best_ask or (asks[0] if asks else None)
    return StreamTick(
        token=token,
        ltp=_price(touch["LastTradedPrice"], "LastTradedPrice"),
        ts=xts_time(touch.get("LastTradedTime"))
        or xts_time(touch.get("LastUpdateTime"))
        or xts_time(payload.get("ExchangeTimeStamp")),
        bid=best_bid.price if best_bid else None,
        ask=best_ask.price if best_ask else None,
        bid_qty=best_bid.quantity if best_bid else 0,
        ask_qty=best_ask.quantity if best_ask else 0,
        volume=_count(touch.get("TotalTradedQuantity"), "TotalTradedQuantity"),
        open=_price(touch.get("Open"), "Open") or None,
        high=_price(touch.get("High"), "High") or None,
        low=_price(touch.get("Low"), "Low") or None,
        close=_price(touch.get("Close"), "Close") or None,
        bids=bids,
        asks=asks,
    )


Subscriber = Callable[[list[dict[str, int]]], None]


class MarketDialect:
    """XTS's market-data socket (see the module docstring). ``subscriber`` sends one REST subscription
    of instruments (``[{"exchangeSegment", "exchangeInstrumentID"}]``) with the market-data session."""

    family = FAMILY
    heartbeat_interval: float | None = HEARTBEAT

    def __init__(self, *, root: str, token: str, user_id: str, subscriber: Subscriber) -> None:
        self._url = socketio_url(
            root,
            "/apimarketdata/socket.io/",
            {"token": token, "userID": user_id, "publishFormat": "JSON", "broadcastMode": "Full"},
        )
        self._subscriber = subscriber
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the URL: it carries the session's token
        return "MarketDialect('xts')"

    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        return {}

    def opening(self) -> Sequence[str | bytes]:
        return []  # Socket.IO 2 joins the default namespace by itself

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        """Subscribe ``tokens`` over REST (nothing to send on the socket); a failed batch is retried
        with the next heartbeat."""
        instruments = []
        for token in tokens:
            try:
                segment, instrument_id = parse_token(token)
            except ValueError:
                logger.warning("xts stream: %r is not an XTS token; not subscribed", token[:40])
                continue
            instruments.append(
                (token, {"exchangeSegment": SEGMENT_NUMBERS[segment], "exchangeInstrumentID": instrument_id})
            )
        for start in range(0, len(instruments), SUBSCRIBE_BATCH):
            batch = instruments[start : start + SUBSCRIBE_BATCH]
            try:
                self._subscriber([item for _, item in batch])
            except BrokerError as error:
                if "already subscribed" in error.message.lower():
                    continue
                logger.warning("xts stream: subscribing %d instruments failed (%s); retrying", len(batch), error.code)
                with self._lock:
                    self._pending.update(token for token, _ in batch)
                continue
            with self._lock:
                self._pending.difference_update(token for token, _ in batch)
        return []

    def heartbeat(self) -> str | bytes | None:
        with self._lock:
            pending, self._pending = sorted(self._pending), set()
        if pending:
            self.subscribe(pending)
        return "2"  # Engine.IO 3: the client pings

    def decode(self, message: str | bytes) -> Decoded:
        event = event_of(message)
        if isinstance(event, Decoded):
            return event
        name, args = event
        match = _EVENT.fullmatch(name)
        if match is None or match.group(2) != "full" or int(match.group(1)) not in (TOUCHLINE, DEPTH, LTP):
            return Decoded()  # another event (candles, open interest, partial forms, notices)
        return Decoded(ticks=[tick_from(payload_of(args, name))])


class OrderDialect:
    """XTS's interactive socket: its ``order`` and ``trade`` events (the order's state, and one
    execution with the order's state) are the order updates (``XtsAdapter.update_from_stream``)."""

    family = FAMILY
    heartbeat_interval: float | None = HEARTBEAT

    def __init__(self, *, root: str, token: str, user_id: str) -> None:
        self._url = socketio_url(
            root, "/interactive/socket.io/", {"token": token, "userID": user_id, "apiType": "INTERACTIVE"}
        )

    def __repr__(self) -> str:
        return "OrderDialect('xts')"

    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        return {}

    def opening(self) -> Sequence[str | bytes]:
        return []

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        return []  # the socket reports every order of the session's user

    def heartbeat(self) -> str | bytes | None:
        return "2"

    def decode(self, message: str | bytes) -> Decoded:
        event = event_of(message)
        if isinstance(event, Decoded):
            return event
        name, args = event
        if name in ("order", "trade"):
            return Decoded(orders=[payload_of(args, name)])
        if name == "logout":
            logger.warning("xts order stream: XTS ended the session")
        return Decoded()  # joined, position, tradeConversion, notices
