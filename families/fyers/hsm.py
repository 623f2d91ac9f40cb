"""Fyers' market-data websocket (``wss://socket.fyers.in/hsm/v1-5/prod``), the binary "HSM" protocol,
as a ``brokers.families.stream.StreamDialect``.

Every message is big-endian: a 2-byte length, a 1-byte type, then the type's fields. Learned from
the fyers-apiv3 SDK (FyersWebsocket/data_ws.py, defines.py, map.json):

- the client opens with an authentication request (type 1, four fields: the ``hsm_key`` claim of the
  access token's JWT, the mode "P", the byte 1, the client's source name) and a mode request (type 12:
  a 64-bit channel mask and 70 for full data or 76 for lite); the server answers type 1 with "K" (or a
  refusal) and an acknowledgement count: every that many data messages, the client acknowledges the
  last one's number (type 3);
- it subscribes topics (type 4): ``sf|<segment>|<exchange token>`` for a scrip, ``if|<segment>|<name>``
  for an index, on channel 11, at most 1,500 a message; the segment is named by the fytoken's first
  four digits (``1010`` -> ``nse_cm``) and the exchange token is the fytoken from its 11th digit on;
- data (type 6): a 4-byte message number, a 2-byte packet count, then packets: a snapshot ("S", 83:
  topic id, topic name, the topic's int32 fields, then its ``multiplier`` and ``precision`` and three
  strings), a full update ("U", 85: topic id and the int32 fields, -2**31 for "unchanged") or a lite
  update ("L", 76: topic id and the last price). A price is ``value / (10**precision * multiplier)``;
  times are epoch seconds;
- a heartbeat of three bytes (0, 1, 11) every 10 s.

The SDK reads the 2-byte topic id in the machine's byte order; it is only a key within one
connection, read here in network order (the same bytes give the same key either way). The topic
ids, a topic's last full values and the acknowledgement count live for one connection: ``opening``
(sent on every connect) starts them afresh.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from brokers.families.stream import Decoded, MalformedFrame, StreamTick
from families.fyers.mapping import HSM_SEGMENTS, is_fytoken

logger = logging.getLogger(__name__)

REQ_AUTH, REQ_ACK, REQ_SUBSCRIBE, REQ_UNSUBSCRIBE = 1, 3, 4, 5
RESP_DATA, RESP_PAUSE, RESP_RESUME, REQ_MODE = 6, 7, 8, 12
MODE_FULL, MODE_LITE = 70, 76
SNAPSHOT, UPDATE, LITE = 83, 85, 76
CHANNEL = 11
NULL = -(2**31)
HEARTBEAT = bytes([0, 1, 11])
SOURCE = "terminal-fyers"
MAX_TOPICS_PER_MESSAGE = 1500

# The int32 fields of a scrip ("sf") and an index ("if") topic, in order (map.json data_val, index_val).
SCRIP_FIELDS = (
    "ltp",
    "vol_traded_today",
    "last_traded_time",
    "exch_feed_time",
    "bid_size",
    "ask_size",
    "bid_price",
    "ask_price",
    "last_traded_qty",
    "tot_buy_qty",
    "tot_sell_qty",
    "avg_trade_price",
    "OI",
    "low_price",
    "high_price",
    "Yhigh",
    "Ylow",
    "lower_ckt",
    "upper_ckt",
    "open_price",
    "prev_close_price",
)
INDEX_FIELDS = ("ltp", "prev_close_price", "exch_feed_time", "high_price", "low_price", "open_price")
# A depth ("dp") topic's fields: five levels of bid and ask prices, sizes and order counts.
DEPTH_FIELDS = tuple(
    f"{side}_{what}{level}" for what in ("price", "size", "order") for side in ("bid", "ask") for level in range(1, 6)
)
FIELDS = {"sf": SCRIP_FIELDS, "if": INDEX_FIELDS, "dp": DEPTH_FIELDS}


# --- the client's requests -----------------------------------------------------------------------
def _field(field_id: int, value: bytes) -> bytes:
    return struct.pack(">BH", field_id, len(value)) + value


def auth_message(hsm_key: str, *, source: str = SOURCE) -> bytes:
    """The authentication request: the length counts everything after itself."""
    key, name = hsm_key.encode(), source.encode()
    body = bytes([REQ_AUTH, 4]) + _field(1, key) + _field(2, b"P") + _field(3, bytes([1])) + _field(4, name)
    return struct.pack(">H", len(body)) + body


def mode_message(*, full: bool = True, channel: int = CHANNEL) -> bytes:
    """Full (or lite) data on ``channel``; the SDK sends 0 as this request's length."""
    mask = struct.pack(">Q", 1 << channel)
    return struct.pack(">HBB", 0, REQ_MODE, 2) + _field(1, mask) + _field(2, bytes([MODE_FULL if full else MODE_LITE]))


def subscribe_message(topics: Sequence[str], *, token_text: str, source: str = SOURCE, channel: int = CHANNEL) -> bytes:
    """Subscribe ``topics`` on ``channel``. The length is the SDK's own sum (18 + the topic list +
    the access token's text + the source's), which counts bytes the message does not carry; the
    server reads the fields by their own lengths."""
    scrips = struct.pack(">H", len(topics))
    for topic in topics:
        name = topic.encode("ascii")
        if len(name) > 255:
            raise ValueError("an HSM topic is at most 255 bytes")
        scrips += bytes([len(name)]) + name
    length = 18 + len(scrips) + len(token_text) + len(source)
    return struct.pack(">HBB", length & 0xFFFF, REQ_SUBSCRIBE, 2) + _field(1, scrips) + _field(2, bytes([channel]))


def ack_message(message_number: int) -> bytes:
    """Acknowledge the data message numbered ``message_number``."""
    return struct.pack(">HBBBHI", 9, REQ_ACK, 1, 1, 4, message_number & 0xFFFFFFFF)


# --- reading the server's messages ---------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise MalformedFrame("the HSM message ends inside a field")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def byte(self) -> int:
        return self.take(1)[0]

    def text(self) -> str:
        return self.take(self.byte()).decode("utf-8", errors="replace")


@dataclass
class _Topic:
    name: str
    kind: str  # sf, if, dp
    token: str  # the fytoken the topic stands for (the topic's name when we do not know it)
    values: dict[str, int] = field(default_factory=dict)
    multiplier: int = 1
    precision: int = 0


def topic_for(token: str, ticker: str | None = None) -> str | None:
    """The HSM topic of a fytoken (``ticker``, its symbol "NSE:NIFTY50-INDEX", tells an index), or None
    for a token whose segment the feed does not serve."""
    if not is_fytoken(token):
        return None
    segment = HSM_SEGMENTS.get(token[:4])
    if segment is None:
        return None
    if ticker and ticker.endswith("-INDEX") and ":" in ticker:
        return f"if|{segment}|{ticker.split(':', 1)[1].rsplit('-', 1)[0]}"
    return f"sf|{segment}|{token[10:]}"


class HsmDialect:
    """The HSM protocol for one signed-in account (see the module docstring). ``symbols``: the fytokens
    the Fyers mapping knows with their tickers, read once when the dialect is made (the feed's thread
    never reads the database): a ticker tells an index's topic, and a snapshot of a topic never
    subscribed here (it names its topic, not its fytoken) is named through them."""

    family = "fyers"
    heartbeat_interval: float | None = 10.0

    def __init__(
        self,
        *,
        url: str,
        hsm_key: str,
        token_text: str,
        symbols: Mapping[str, str] | None = None,
        full: bool = True,
    ) -> None:
        self._url, self._hsm_key, self._token_text, self._full = url, hsm_key, token_text, full
        self._symbols: Mapping[str, str] = symbols or {}
        self._by_topic: dict[str, str] = {}  # topic -> fytoken, for the topics subscribed
        self._known: dict[str, str] | None = None  # topic -> fytoken, for the whole mapping (lazy)
        self._topics: dict[int, _Topic] = {}
        self.ack_every = 0
        self._unacknowledged = 0
        self.refused: str | None = None

    def __repr__(self) -> str:  # never the key
        return f"HsmDialect({self._url!r})"

    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        return {}

    def opening(self) -> Sequence[bytes]:
        self._topics.clear()
        self.ack_every, self._unacknowledged, self.refused = 0, 0, None
        return [auth_message(self._hsm_key), mode_message(full=self._full)]

    def subscribe(self, tokens: Sequence[str]) -> Sequence[bytes]:
        symbols = self._symbols
        topics = []
        for token in tokens:
            topic = topic_for(token, symbols.get(token))
            if topic is None:
                logger.warning("fyers: token %r has no HSM segment; not subscribed", str(token)[:24])
                continue
            self._by_topic[topic] = token
            topics.append(topic)
        return [
            subscribe_message(topics[start : start + MAX_TOPICS_PER_MESSAGE], token_text=self._token_text)
            for start in range(0, len(topics), MAX_TOPICS_PER_MESSAGE)
        ]

    def heartbeat(self) -> bytes:
        return HEARTBEAT

    def decode(self, message: str | bytes) -> Decoded:
        if isinstance(message, str):
            raise MalformedFrame("the HSM feed sends binary messages")
        reader = _Reader(bytes(message))
        _, kind = reader.unpack(">HB")
        if kind == RESP_DATA:
            return self._data(reader)
        if kind == REQ_AUTH:
            self._auth(reader)
        elif kind in (REQ_SUBSCRIBE, REQ_UNSUBSCRIBE, RESP_PAUSE, RESP_RESUME, REQ_MODE):
            self._reply(reader, kind)
        else:
            raise MalformedFrame(f"HSM message type {kind} is not one the feed sends")
        return Decoded()

    # --- answers ----------------------------------------------------------------------------------
    def _auth(self, reader: _Reader) -> None:
        reader.byte()  # field count
        reader.byte()  # field id
        status = reader.take(reader.unpack(">H")[0])
        reader.byte()
        size = reader.unpack(">H")[0]
        count = int.from_bytes(reader.take(size), "big") if size else 0
        if status != b"K":
            self.refused = status.decode("utf-8", errors="replace")[:80]
            logger.error("fyers: the market feed refused the session's key")
        self.ack_every, self._unacknowledged = count, 0

    def _reply(self, reader: _Reader, kind: int) -> None:
        reader.byte()  # field count
        reader.byte()  # field id
        status = reader.take(reader.unpack(">H")[0])
        if status[:1] != b"K":
            logger.warning("fyers: the market feed refused request type %s", kind)

    # --- data -------------------------------------------------------------------------------------
    def _data(self, reader: _Reader) -> Decoded:
        number, count = reader.unpack(">IH")
        decoded = Decoded()
        for _ in range(count):
            packet = reader.byte()
            topic: _Topic | None
            if packet == SNAPSHOT:
                topic = self._snapshot(reader)
            elif packet == UPDATE:
                topic = self._update(reader)
            elif packet == LITE:
                topic = self._lite(reader)
            else:
                raise MalformedFrame(f"HSM packet type {packet} is unknown")
            if topic is None:
                decoded.skipped += 1
                continue
            tick = self._tick(topic)
            if tick is not None:
                decoded.ticks.append(tick)
        if self.ack_every > 0:
            self._unacknowledged += 1
            if self._unacknowledged >= self.ack_every:
                self._unacknowledged = 0
                decoded.replies.append(ack_message(number))
        return decoded

    def _snapshot(self, reader: _Reader) -> _Topic:
        topic_id = reader.unpack(">H")[0]
        name = reader.text()
        kind = name[:2]
        names = FIELDS.get(kind)
        if names is None or name[2:3] != "|":
            raise MalformedFrame("an HSM snapshot names no known topic kind")
        values = self._values(reader, names, {})
        reader.take(2)
        multiplier, precision = reader.unpack(">HB")
        for _ in range(3):  # exchange, exchange token, symbol
            reader.text()
        if multiplier == 0 or precision > 12:
            raise MalformedFrame("an HSM snapshot's multiplier or precision is out of range")
        topic = _Topic(name=name, kind=kind, token=self._token(name), values=values)
        topic.multiplier, topic.precision = multiplier, precision
        self._topics[topic_id] = topic
        return topic

    def _update(self, reader: _Reader) -> _Topic | None:
        topic_id = reader.unpack(">H")[0]
        topic = self._topics.get(topic_id)
        names = FIELDS[topic.kind] if topic is not None else ()
        values = self._values(reader, names, topic.values if topic is not None else {})
        if topic is None:
            return None
        topic.values = values
        return topic

    def _lite(self, reader: _Reader) -> _Topic | None:
        topic_id = reader.unpack(">H")[0]
        value = reader.unpack(">i")[0]
        topic = self._topics.get(topic_id)
        if topic is None:
            return None
        if value != NULL:
            topic.values["ltp"] = value
        return topic

    @staticmethod
    def _values(reader: _Reader, names: Sequence[str], current: dict[str, int]) -> dict[str, int]:
        count = reader.byte()
        values = dict(current)
        for index in range(count):
            value = reader.unpack(">i")[0]
            if value != NULL and index < len(names):
                values[names[index]] = value
        return values

    def _token(self, topic: str) -> str:
        token = self._by_topic.get(topic)
        if token is not None:
            return token
        if self._known is None:
            self._known = {}
            for fytoken, ticker in self._symbols.items():
                known = topic_for(fytoken, ticker)
                if known is not None:
                    self._known[known] = fytoken
        return self._known.get(topic, topic)

    def _tick(self, topic: _Topic) -> StreamTick | None:
        if topic.kind == "dp":
            return None
        values = topic.values

        def price(name: str) -> Decimal | None:
            raw = values.get(name)
            if raw is None:
                return None
            try:
                return Decimal(raw) / (Decimal(10) ** topic.precision * topic.multiplier)
            except (InvalidOperation, ArithmeticError):
                raise MalformedFrame("an HSM price cannot be scaled") from None

        return StreamTick(
            token=topic.token,
            ltp=price("ltp"),
            ts=_time(values.get("exch_feed_time") or values.get("last_traded_time")),
            bid=price("bid_price"),
            ask=price("ask_price"),
            bid_qty=max(values.get("bid_size", 0), 0),
            ask_qty=max(values.get("ask_size", 0), 0),
            volume=max(values.get("vol_traded_today", 0), 0),
            oi=max(values.get("OI", 0), 0),
            open=price("open_price"),
            high=price("high_price"),
            low=price("low_price"),
            close=price("prev_close_price"),
        )


def _time(epoch: int | None) -> datetime | None:
    if not epoch or epoch <= 0:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None
