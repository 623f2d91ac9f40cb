"""Angel One's two websockets as ``brokers.families.stream.StreamDialect``s.

Market data (SmartWebSocketV2, the broker's "ws" endpoint, ``.../smart-stream``): the handshake
carries ``Authorization: Bearer <jwt>``, ``x-api-key``, ``x-client-code`` and ``x-feed-token``; the
client subscribes with ``{"correlationID", "action": 1, "params": {"mode", "tokenList":
[{"exchangeType", "tokens": [...]}]}}`` and sends the text ``ping`` every 10 s (answered ``pong``).
Each binary message is one packet, little-endian, whose length its mode fixes:

====== ===========================================================================================
offset field
====== ===========================================================================================
0      u8 subscription mode (1 LTP, 2 QUOTE, 3 SNAP_QUOTE)
1      u8 exchange type (1 nse_cm, 2 nse_fo, 3 bse_cm, 4 bse_fo, 5 mcx_fo, 7 ncx_fo, 13 cde_fo)
2      25 bytes: the token, ASCII, NUL-padded
27     i64 sequence number
35     i64 exchange timestamp (epoch milliseconds)
43     i64 last traded price                                   -> an LTP packet is 51 bytes
51     i64 last traded quantity, 59 i64 average price, 67 i64 volume, 75 f64 total buy quantity,
       83 f64 total sell quantity, 91/99/107/115 i64 open, high, low, close -> a QUOTE packet is 123
123    i64 last traded time, 131 i64 open interest, 139 i64 OI change, 147: 10 x 20 bytes of best five
       {u16 flag (1 buy, 0 sell), i64 quantity, i64 price, u16 orders}, 347/355 i64 upper and lower
       circuit, 363/371 i64 52-week high and low               -> a SNAP_QUOTE packet is 379 bytes
====== ===========================================================================================

Prices are integers: paise, except currency derivatives (exchange type 13), in 1/10^7 rupee.
A JSON text message is Angel's error answer to a request (``{"correlationID", "errorCode",
"errorMessage"}``); it is logged.

Order updates (the broker's "order_ws" endpoint, ``wss://tns.angelone.in/smart-order-update``): the
same handshake headers, no subscription, the text ``ping`` every 10 s; each text message is a JSON
object ``{"user-id", "status-code", "order-status", "error-message", "orderData": {...}}`` handed on
whole as an order message (``AngelAdapter.update_from_stream`` reads it).
"""

from __future__ import annotations

import json
import logging
import struct
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokers import catalogue
from brokers.families.stream import Decoded, MalformedFrame, StreamTick
from brokers.services.credentials import broker_credentials_get
from families.angel.mapping import (
    EXCHANGE_TYPES,
    FAMILY,
    PAISE,
    PRICE_DIVISORS,
    SEGMENTS_BY_TYPE,
    split_token,
    token_key,
)
from marketdata.quotes import DepthLevel

logger = logging.getLogger(__name__)

MODE_LTP, MODE_QUOTE, MODE_SNAP_QUOTE = 1, 2, 3
PACKET_SIZES = {MODE_LTP: 51, MODE_QUOTE: 123, MODE_SNAP_QUOTE: 379}
SUBSCRIBE, UNSUBSCRIBE = 1, 0
HEARTBEAT = "ping"
HEARTBEAT_SECONDS = 10.0
MAX_TOKENS_PER_MESSAGE = 1000  # Angel's limit of tokens per connection

_HEAD = struct.Struct("<BB25sqqq")  # mode, exchange type, token, sequence, exchange time, ltp
_QUOTE = struct.Struct("<qqqddqqqq")  # at 51: ltq, average price, volume, buy qty, sell qty, o h l c
_SNAP = struct.Struct("<qqq")  # at 123: last traded time, open interest, OI change
_LEVEL = struct.Struct("<HqqH")  # 20 bytes: flag, quantity, price, orders
_LEVELS_AT, _LEVELS = 147, 10
# An i64 beyond this is not a price or quantity any exchange has (a corrupt packet).
_SANE = 10**15


def _price(raw: int, exchange_type: int) -> Decimal | None:
    if raw <= 0:
        return None
    if raw > _SANE:
        raise MalformedFrame("a price out of range")
    return Decimal(raw) / PRICE_DIVISORS.get(exchange_type, PAISE)


def _quantity(raw: int | float) -> int:
    if raw != raw or raw < 0 or raw > _SANE:  # NaN, negative, absurd
        raise MalformedFrame("a quantity out of range")
    return int(raw)


def decode_packet(packet: bytes) -> StreamTick:
    """One SmartWebSocketV2 packet as a tick of our mapping's token ("NSE:2885"). Raises MalformedFrame
    for a packet that is short, of an unknown mode or exchange type, or holds impossible values."""
    if len(packet) < _HEAD.size:
        raise MalformedFrame(f"a packet of {len(packet)} bytes")
    mode, exchange_type, raw_token, _sequence, exchange_ms, ltp = _HEAD.unpack_from(packet)
    size = PACKET_SIZES.get(mode)
    if size is None:
        raise MalformedFrame(f"subscription mode {mode}")
    if len(packet) < size:
        raise MalformedFrame(f"a mode-{mode} packet of {len(packet)} bytes, not {size}")
    segment = SEGMENTS_BY_TYPE.get(exchange_type)
    if segment is None:
        raise MalformedFrame(f"exchange type {exchange_type}")
    token_text = raw_token.split(b"\x00", 1)[0]
    if not token_text or not token_text.isascii() or not token_text.decode().isalnum():
        raise MalformedFrame("a token that is not ASCII letters and digits")
    ts = None
    if 0 < exchange_ms < 4_102_444_800_000:  # before 2100
        ts = datetime.fromtimestamp(exchange_ms / 1000, tz=UTC)
    fields: dict[str, Any] = {
        "token": token_key(segment, token_text.decode()),
        "ltp": _price(ltp, exchange_type),
        "ts": ts,
    }
    if mode in (MODE_QUOTE, MODE_SNAP_QUOTE):
        _ltq, _avg, volume, buy_qty, sell_qty, open_, high, low, close = _QUOTE.unpack_from(packet, 51)
        fields.update(
            volume=_quantity(volume),
            open=_price(open_, exchange_type),
            high=_price(high, exchange_type),
            low=_price(low, exchange_type),
            close=_price(close, exchange_type),
        )
        for total in (buy_qty, sell_qty):  # not kept, but a corrupt packet shows here too
            _quantity(total)
    if mode == MODE_SNAP_QUOTE:
        _ltt, oi, _oi_change = _SNAP.unpack_from(packet, 123)
        bids: list[DepthLevel] = []
        asks: list[DepthLevel] = []
        for index in range(_LEVELS):
            flag, quantity, price, orders = _LEVEL.unpack_from(packet, _LEVELS_AT + index * _LEVEL.size)
            level_price = _price(price, exchange_type)
            if level_price is None:
                continue
            level = DepthLevel(level_price, _quantity(quantity), max(int(orders), 0))
            (bids if flag == 1 else asks).append(level)
        fields.update(oi=_quantity(oi), bids=tuple(bids), asks=tuple(asks))
        if bids:
            fields.update(bid=bids[0].price, bid_qty=bids[0].quantity)
        if asks:
            fields.update(ask=asks[0].price, ask_qty=asks[0].quantity)
    return StreamTick(**fields)


def decode_market(message: str | bytes) -> Decoded:
    """One message of the market-data websocket (see the module docstring)."""
    if isinstance(message, bytes | bytearray | memoryview):
        return Decoded(ticks=[decode_packet(bytes(message))])
    if not isinstance(message, str):
        raise MalformedFrame("neither text nor binary")
    if message.strip().lower() == "pong":
        return Decoded()
    try:
        reply = json.loads(message)
    except ValueError:
        raise MalformedFrame("a text message that is neither pong nor JSON") from None
    if isinstance(reply, dict) and ("errorCode" in reply or "errorMessage" in reply):
        logger.warning(
            "Angel One's market stream refused a request: %s %s",
            str(reply.get("errorCode"))[:20],
            str(reply.get("errorMessage"))[:200],
        )
        return Decoded()
    raise MalformedFrame("a JSON message of an unknown shape")


def decode_orders(message: str | bytes) -> Decoded:
    """One message of the order-update websocket: an order message, or nothing (pong)."""
    if isinstance(message, bytes | bytearray | memoryview):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedFrame("an order update that is not UTF-8") from None
    if message.strip().lower() == "pong":
        return Decoded()
    try:
        update = json.loads(message, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise MalformedFrame("an order update that is not JSON") from None
    if not isinstance(update, dict) or not isinstance(update.get("orderData"), dict):
        raise MalformedFrame("an order update without orderData")
    if not str(update["orderData"].get("orderid") or "").strip():
        return Decoded()  # the stream's greeting on connection (order-status AB00): about no order
    return Decoded(orders=[update])


def subscribe_messages(tokens: Sequence[str], *, mode: int = MODE_SNAP_QUOTE, action: int = SUBSCRIBE) -> list[str]:
    """The subscription messages for our mapping's tokens, grouped by exchange type, at most
    MAX_TOKENS_PER_MESSAGE tokens each; a token not of the form "NSE:2885" is skipped (logged)."""
    grouped: dict[int, list[str]] = defaultdict(list)
    for key in tokens:
        try:
            segment, token = split_token(key)
            grouped[EXCHANGE_TYPES[segment]].append(token)
        except (ValueError, KeyError):
            logger.warning("Angel One's stream cannot subscribe %r (not an Angel token)", str(key)[:40])
    pairs = [(kind, token) for kind in sorted(grouped) for token in grouped[kind]]
    messages = []
    for start in range(0, len(pairs), MAX_TOKENS_PER_MESSAGE):
        chunk: dict[int, list[str]] = defaultdict(list)
        for kind, token in pairs[start : start + MAX_TOKENS_PER_MESSAGE]:
            chunk[kind].append(token)
        messages.append(
            json.dumps(
                {
                    "correlationID": f"sub{start // MAX_TOKENS_PER_MESSAGE:07d}",
                    "action": action,
                    "params": {
                        "mode": mode,
                        "tokenList": [{"exchangeType": kind, "tokens": chunk[kind]} for kind in sorted(chunk)],
                    },
                },
                separators=(",", ":"),
            )
        )
    return messages


def stream_headers(api_key: str, client_code: str, session: Mapping[str, str]) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {session.get('jwt_token', '')}",
        "x-api-key": api_key,
        "x-client-code": client_code,
        "x-feed-token": session.get("feed_token", ""),
    }


@dataclass
class AngelMarketDialect:
    """SmartWebSocketV2 for one signed-in account (module docstring)."""

    ws_url: str
    auth: Mapping[str, str]
    mode: int = MODE_SNAP_QUOTE
    family: str = FAMILY
    heartbeat_interval: float | None = HEARTBEAT_SECONDS

    @classmethod
    def for_account(cls, account: Any, session: Mapping[str, str]) -> AngelMarketDialect:
        api_key = broker_credentials_get(account=account).get("api_key", "")
        return cls(catalogue.endpoint(account.broker, "ws"), stream_headers(api_key, account.client_code, session))

    def url(self) -> str:
        return self.ws_url

    def headers(self) -> Mapping[str, str]:
        return self.auth

    def opening(self) -> Sequence[str | bytes]:
        return ()

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        return subscribe_messages(tokens, mode=self.mode)

    def heartbeat(self) -> str | bytes | None:
        return HEARTBEAT

    def decode(self, message: str | bytes) -> Decoded:
        return decode_market(message)


@dataclass
class AngelOrderDialect:
    """The order-update websocket for one signed-in account (module docstring)."""

    ws_url: str
    auth: Mapping[str, str]
    family: str = FAMILY
    heartbeat_interval: float | None = HEARTBEAT_SECONDS

    @classmethod
    def for_account(cls, account: Any, session: Mapping[str, str]) -> AngelOrderDialect:
        api_key = broker_credentials_get(account=account).get("api_key", "")
        return cls(
            catalogue.endpoint(account.broker, "order_ws"), stream_headers(api_key, account.client_code, session)
        )

    def url(self) -> str:
        return self.ws_url

    def headers(self) -> Mapping[str, str]:
        return self.auth

    def opening(self) -> Sequence[str | bytes]:
        return ()

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        return ()

    def heartbeat(self) -> str | bytes | None:
        return HEARTBEAT

    def decode(self, message: str | bytes) -> Decoded:
        return decode_orders(message)
