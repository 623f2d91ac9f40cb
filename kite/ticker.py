"""The Kite Connect v3 ticker's wire format, with no I/O: binary quote frames, and the JSON text
messages in both directions (https://kite.trade/docs/connect/v3/websocket).

Binary frames (big-endian throughout):

- a frame shorter than 2 bytes is a heartbeat;
- otherwise a uint16 packet count, then per packet a uint16 length and that many bytes;
- a packet's length says its mode: 8 LTP, 28 index quote, 32 index full, 44 quote, 184 full (with
  five bid and five offer depth entries of 12 bytes: int32 quantity, int32 price, int16 orders, two
  bytes of padding).

The first four bytes of a packet are the instrument token, whose low byte is the segment
(``token = exchange_token << 8 | segment``). Prices are integers in paise (÷100); NSE currency
derivatives (segment 3) are ÷10,000,000 and BSE currency derivatives (segment 6) ÷10,000. Prices are
read as the documented signed int32 (a negative price, as MCX crude had in 2020, stays negative);
quantities, volume and open interest as unsigned, as the official client reads them (a day's volume
can pass 2^31). Times are Unix seconds, returned UTC-aware; 0 means "none".

``decode_frame`` raises ``MalformedFrame`` when the framing does not fit the bytes (a truncated frame,
a packet running past the end). A packet of a length no mode has is skipped and counted in
``Frame.skipped`` rather than guessed at. Text messages that are not JSON objects of the documented
shape raise ``MalformedMessage``. Every error here is a ``TickerProtocolError``.
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


class TickerProtocolError(ValueError):
    """Bytes or text from the ticker that do not follow the documented format."""


class MalformedFrame(TickerProtocolError):
    """A binary frame whose packet count and lengths do not fit its bytes."""


class MalformedMessage(TickerProtocolError):
    """A text message that is not a JSON object of a known shape."""


class Mode(enum.StrEnum):
    LTP = "ltp"
    QUOTE = "quote"
    FULL = "full"


class Segment(enum.IntEnum):
    """The low byte of an instrument token."""

    NSE = 1
    NFO = 2
    CDS = 3
    BSE = 4
    BFO = 5
    BCD = 6
    MCX = 7
    MCXSX = 8
    INDICES = 9


# Decimal places of the integer prices, by segment; every other segment is in paise.
_PRICE_PLACES = {Segment.CDS: 7, Segment.BCD: 4}

LTP_LENGTH, INDEX_QUOTE_LENGTH, INDEX_FULL_LENGTH, QUOTE_LENGTH, FULL_LENGTH = 8, 28, 32, 44, 184
DEPTH_OFFSET, DEPTH_ENTRY_LENGTH, DEPTH_LEVELS = 64, 12, 5

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_LTP = struct.Struct(">Ii")  # token, last price
_INDEX = struct.Struct(">Iiiiii")  # token, last price, high, low, open, close (then the change, unused)
_QUOTE = struct.Struct(">IiIiIIIiiii")  # token, ltp, last qty, avg price, volume, buy qty, sell qty, o, h, l, c
_FULL_TAIL = struct.Struct(">IIIII")  # last trade time, oi, oi day high, oi day low, exchange time
_DEPTH = struct.Struct(">IiH2x")  # quantity, price, orders, padding


def instrument_token(exchange_token: int, segment: int) -> int:
    """The ticker's instrument token of an exchange token in a segment."""
    if not 0 <= segment <= 0xFF or exchange_token < 0 or exchange_token > 0xFFFFFF:
        raise ValueError(f"no instrument token for exchange token {exchange_token} in segment {segment}")
    return exchange_token << 8 | segment


def price_places(token: int) -> int:
    """Decimal places of the integer prices of the instrument ``token`` (2, or 7 and 4 for currencies)."""
    return _PRICE_PLACES.get(token & 0xFF, 2)


@dataclass(frozen=True, slots=True)
class DepthEntry:
    price: Decimal
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Tick:
    """One packet. Fields a mode does not carry are None (an LTP packet has only the last price)."""

    instrument_token: int
    mode: Mode
    last_price: Decimal
    is_index: bool = False
    last_traded_quantity: int | None = None
    average_traded_price: Decimal | None = None
    volume_traded: int | None = None
    total_buy_quantity: int | None = None
    total_sell_quantity: int | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    last_trade_time: datetime | None = None
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    exchange_timestamp: datetime | None = None
    bids: tuple[DepthEntry, ...] = ()
    asks: tuple[DepthEntry, ...] = ()

    @property
    def segment(self) -> int:
        return self.instrument_token & 0xFF

    @property
    def tradable(self) -> bool:
        return self.segment != Segment.INDICES


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded binary message: its ticks in packet order, and how many packets were skipped."""

    ticks: tuple[Tick, ...] = ()
    skipped: int = 0
    heartbeat: bool = False


def _price(raw: int, places: int) -> Decimal:
    value = Decimal(raw).scaleb(-places)
    if places > 4:  # currency prices have 4 meaningful places; drop the zeros beyond them
        shorter = value.quantize(Decimal(1).scaleb(-4))
        if shorter == value:
            return shorter
    return value


def _time(raw: int) -> datetime | None:
    return datetime.fromtimestamp(raw, UTC) if raw else None


def split_packets(data: bytes) -> list[bytes]:
    """The packets of a binary frame (none for a heartbeat); ``MalformedFrame`` if they do not fit.

    Bytes after the last declared packet are ignored, as the official client does."""
    if len(data) < 2:
        return []
    (count,) = _U16.unpack_from(data, 0)
    packets = []
    offset = 2
    for index in range(count):
        if offset + 2 > len(data):
            raise MalformedFrame(f"frame of {len(data)} bytes ends before packet {index + 1} of {count}")
        (length,) = _U16.unpack_from(data, offset)
        offset += 2
        if offset + length > len(data):
            raise MalformedFrame(
                f"packet {index + 1} of {count} declares {length} bytes; the frame has {len(data) - offset} left"
            )
        packets.append(bytes(data[offset : offset + length]))
        offset += length
    return packets


def decode_packet(packet: bytes) -> Tick | None:
    """The tick in one packet, or None when its length is not one of the documented modes."""
    length = len(packet)
    if length == LTP_LENGTH:
        token, ltp = _LTP.unpack(packet)
        return Tick(instrument_token=token, mode=Mode.LTP, last_price=_price(ltp, price_places(token)))
    if length in (INDEX_QUOTE_LENGTH, INDEX_FULL_LENGTH):
        token, ltp, high, low, open_, close = _INDEX.unpack_from(packet, 0)
        places = price_places(token)
        return Tick(
            instrument_token=token,
            mode=Mode.QUOTE if length == INDEX_QUOTE_LENGTH else Mode.FULL,
            is_index=True,
            last_price=_price(ltp, places),
            high=_price(high, places),
            low=_price(low, places),
            open=_price(open_, places),
            close=_price(close, places),
            exchange_timestamp=_time(_U32.unpack_from(packet, 28)[0]) if length == INDEX_FULL_LENGTH else None,
        )
    if length in (QUOTE_LENGTH, FULL_LENGTH):
        token, ltp, last_qty, average, volume, buy_qty, sell_qty, open_, high, low, close = _QUOTE.unpack_from(
            packet, 0
        )
        places = price_places(token)
        fields: dict[str, Any] = {}
        if length == FULL_LENGTH:
            last_trade, oi, oi_high, oi_low, exchange_time = _FULL_TAIL.unpack_from(packet, QUOTE_LENGTH)
            entries = [
                _DEPTH.unpack_from(packet, DEPTH_OFFSET + i * DEPTH_ENTRY_LENGTH) for i in range(2 * DEPTH_LEVELS)
            ]
            depth = [DepthEntry(price=_price(price, places), quantity=qty, orders=n) for qty, price, n in entries]
            fields = {
                "last_trade_time": _time(last_trade),
                "oi": oi,
                "oi_day_high": oi_high,
                "oi_day_low": oi_low,
                "exchange_timestamp": _time(exchange_time),
                "bids": tuple(depth[:DEPTH_LEVELS]),
                "asks": tuple(depth[DEPTH_LEVELS:]),
            }
        return Tick(
            instrument_token=token,
            mode=Mode.QUOTE if length == QUOTE_LENGTH else Mode.FULL,
            last_price=_price(ltp, places),
            last_traded_quantity=last_qty,
            average_traded_price=_price(average, places),
            volume_traded=volume,
            total_buy_quantity=buy_qty,
            total_sell_quantity=sell_qty,
            open=_price(open_, places),
            high=_price(high, places),
            low=_price(low, places),
            close=_price(close, places),
            **fields,
        )
    return None


def decode_frame(data: bytes) -> Frame:
    """Decode one binary websocket message; ``MalformedFrame`` when its framing is broken."""
    if len(data) < 2:
        return Frame(heartbeat=True)
    ticks = []
    skipped = 0
    for packet in split_packets(data):
        tick = decode_packet(packet)
        if tick is None:
            skipped += 1
        else:
            ticks.append(tick)
    return Frame(ticks=tuple(ticks), skipped=skipped)


# Client -> server: {"a": action, "v": value}.


def _tokens(tokens: Iterable[int]) -> list[int]:
    values = list(tokens)
    for token in values:
        if isinstance(token, bool) or not isinstance(token, int) or not 0 < token <= 0xFFFFFFFF:
            raise ValueError(f"{token!r} is not an instrument token")
    return values


def subscribe_message(tokens: Iterable[int]) -> str:
    return json.dumps({"a": "subscribe", "v": _tokens(tokens)}, separators=(",", ":"))


def unsubscribe_message(tokens: Iterable[int]) -> str:
    return json.dumps({"a": "unsubscribe", "v": _tokens(tokens)}, separators=(",", ":"))


def mode_message(mode: Mode | str, tokens: Iterable[int]) -> str:
    return json.dumps({"a": "mode", "v": [Mode(mode).value, _tokens(tokens)]}, separators=(",", ":"))


# Server -> client text messages: {"type": ..., "data": ...}.


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order update (the postback's fields). ``data`` holds every field as sent, read-only."""

    order_id: str
    status: str
    data: Mapping[str, Any] = field(repr=False)
    exchange_order_id: str | None = None
    exchange: str = ""
    tradingsymbol: str = ""
    instrument_token: int | None = None
    transaction_type: str = ""
    order_type: str = ""
    product: str = ""
    quantity: int = 0
    filled_quantity: int = 0
    pending_quantity: int = 0
    cancelled_quantity: int = 0
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    average_price: Decimal | None = None
    status_message: str | None = None
    tag: str | None = None
    order_timestamp: datetime | None = None
    exchange_timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    message: str


@dataclass(frozen=True, slots=True)
class BrokerMessage:
    """A ``message`` from the broker (notices to the user)."""

    message: str


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A well-formed message of a type this module does not know; kept for logging."""

    type: str
    data: Any


TextMessage = OrderUpdate | ErrorMessage | BrokerMessage | UnknownMessage


def _text_field(data: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if optional:
            return None
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedMessage(f"order update field {name} is {type(value).__name__}, not text")


def _int_field(data: Mapping[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = data.get(name)
    if value is None:
        return None if optional else 0
    if isinstance(value, bool):
        raise MalformedMessage(f"order update field {name} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            pass
    raise MalformedMessage(f"order update field {name} is not a whole number: {value!r}")


def _decimal_field(data: Mapping[str, Any], name: str) -> Decimal | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedMessage(f"order update field {name} is not a number: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise MalformedMessage(f"order update field {name} is not a number: {value!r}") from None
    if not number.is_finite():
        raise MalformedMessage(f"order update field {name} is not a finite number: {value!r}")
    return number


def _ist_field(data: Mapping[str, Any], name: str) -> datetime | None:
    """Kite writes order times as ``YYYY-MM-DD HH:MM:SS`` in IST without a zone."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"order update field {name} is not a time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedMessage(f"order update field {name} is not a time: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)).astimezone(UTC)


def order_update(data: Mapping[str, Any]) -> OrderUpdate:
    """An ``OrderUpdate`` from the ``data`` of an order message; ``MalformedMessage`` if it is not one."""
    if not isinstance(data, Mapping):
        raise MalformedMessage("an order update's data is not an object")
    order_id = _text_field(data, "order_id")
    status = _text_field(data, "status")
    if not order_id or not status:
        raise MalformedMessage("an order update needs order_id and status")
    return OrderUpdate(
        order_id=order_id,
        status=status,
        data=MappingProxyType(dict(data)),
        exchange_order_id=_text_field(data, "exchange_order_id", optional=True) or None,
        exchange=_text_field(data, "exchange") or "",
        tradingsymbol=_text_field(data, "tradingsymbol") or "",
        instrument_token=_int_field(data, "instrument_token", optional=True),
        transaction_type=_text_field(data, "transaction_type") or "",
        order_type=_text_field(data, "order_type") or "",
        product=_text_field(data, "product") or "",
        quantity=_int_field(data, "quantity") or 0,
        filled_quantity=_int_field(data, "filled_quantity") or 0,
        pending_quantity=_int_field(data, "pending_quantity") or 0,
        cancelled_quantity=_int_field(data, "cancelled_quantity") or 0,
        price=_decimal_field(data, "price"),
        trigger_price=_decimal_field(data, "trigger_price"),
        average_price=_decimal_field(data, "average_price"),
        status_message=_text_field(data, "status_message", optional=True),
        tag=_text_field(data, "tag", optional=True),
        order_timestamp=_ist_field(data, "order_timestamp"),
        exchange_timestamp=_ist_field(data, "exchange_timestamp"),
    )


def parse_text(payload: str | bytes) -> TextMessage:
    """Parse one text message from the ticker; ``MalformedMessage`` for anything but the documented shape."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("a text message that is not UTF-8") from None
    try:
        message = json.loads(payload)
    except (ValueError, RecursionError):
        raise MalformedMessage("a text message that is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MalformedMessage("a text message without a type")
    kind, data = message["type"], message.get("data")
    if kind == "order":
        return order_update(data)
    if kind in ("error", "message"):
        text = data if isinstance(data, str) else json.dumps(data)
        return ErrorMessage(text) if kind == "error" else BrokerMessage(text)
    return UnknownMessage(type=kind, data=data)
