"""The HSM market feed's wire format as the server side writes and reads it, written for the tests from
the fyers-apiv3 SDK's reading of it (FyersWebsocket/data_ws.py, map.json), independently of the
family's decoder: the local server builds its messages here and checks the client's requests here.

All multi-byte numbers are big-endian ("!"): a message starts with its 2-byte length and 1-byte type.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal

NULL = -(2**31)
# The 21 fields of a scrip snapshot, in the SDK's order (map.json "data_val").
SCRIP = (
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
PRECISION, MULTIPLIER = 2, 1
SEGMENTS = {"1010": "nse_cm", "1011": "nse_fo", "1012": "cde_fo", "1120": "mcx_fo"}


def raw_price(price: Decimal) -> int:
    return int(price * 10**PRECISION * MULTIPLIER)


def topic_of(fytoken: str) -> str:
    return f"sf|{SEGMENTS[fytoken[:4]]}|{fytoken[10:]}"


def _message(kind: int, body: bytes) -> bytes:
    return struct.pack("!HB", len(body) + 1, kind) + body


def _status_field(ok: bool) -> bytes:
    text = b"K" if ok else b"N"
    return struct.pack("!BH", 1, len(text)) + text


def auth_response(*, ok: bool = True, ack_every: int = 0) -> bytes:
    return _message(1, bytes([2]) + _status_field(ok) + struct.pack("!BHI", 2, 4, ack_every))


def reply(kind: int, *, ok: bool = True) -> bytes:
    """The answer to a subscription (4), unsubscription (5) or mode request (12)."""
    return _message(kind, bytes([1]) + _status_field(ok))


def data(number: int, packets: list[bytes]) -> bytes:
    return _message(6, struct.pack("!IH", number, len(packets)) + b"".join(packets))


def _text(value: str) -> bytes:
    raw = value.encode()
    return bytes([len(raw)]) + raw


def snapshot(topic_id: int, topic: str, values: dict[str, int], *, exchange_token: str, symbol: str) -> bytes:
    fields = [values.get(name, NULL) for name in SCRIP]
    return (
        bytes([83])
        + struct.pack("!H", topic_id)
        + _text(topic)
        + bytes([len(fields)])
        + struct.pack(f"!{len(fields)}i", *fields)
        + b"\x00\x00"
        + struct.pack("!HB", MULTIPLIER, PRECISION)
        + _text("NSE")
        + _text(exchange_token)
        + _text(symbol)
    )


def update(topic_id: int, values: dict[str, int]) -> bytes:
    fields = [values.get(name, NULL) for name in SCRIP]
    return bytes([85]) + struct.pack("!HB", topic_id, len(fields)) + struct.pack(f"!{len(fields)}i", *fields)


def lite(topic_id: int, ltp: int) -> bytes:
    return bytes([76]) + struct.pack("!Hi", topic_id, ltp)


# --- the client's requests, as the server checks them ---------------------------------------------
class WireError(ValueError):
    """A client request that is not in the documented shape."""


@dataclass
class Request:
    kind: int
    fields: dict[int, bytes]
    declared_length: int


def read_request(message: bytes) -> Request:
    """A client request's fields by id; raises WireError for anything but a well-formed TLV request."""
    if len(message) < 4:
        raise WireError("a request is at least 4 bytes")
    declared, kind, count = struct.unpack("!HBB", message[:4])
    at, fields = 4, {}
    for _ in range(count):
        if at + 3 > len(message):
            raise WireError("a field header runs past the message")
        field_id, size = struct.unpack("!BH", message[at : at + 3])
        at += 3
        if at + size > len(message):
            raise WireError("a field runs past the message")
        if field_id in fields:
            raise WireError(f"field {field_id} repeated")
        fields[field_id] = message[at : at + size]
        at += size
    if at != len(message):
        raise WireError("bytes after the last field")
    return Request(kind=kind, fields=fields, declared_length=declared)


def read_topics(scrips: bytes) -> list[str]:
    if len(scrips) < 2:
        raise WireError("the topic list has no count")
    (count,) = struct.unpack("!H", scrips[:2])
    at, topics = 2, []
    for _ in range(count):
        if at >= len(scrips):
            raise WireError("the topic list is shorter than its count")
        size = scrips[at]
        topic = scrips[at + 1 : at + 1 + size]
        if len(topic) != size:
            raise WireError("a topic runs past the list")
        topics.append(topic.decode("ascii"))
        at += 1 + size
    if at != len(scrips):
        raise WireError("bytes after the last topic")
    return topics
