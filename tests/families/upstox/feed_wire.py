"""The Upstox market feed's messages built by hand from the wire format (protobuf field numbers and
wire types of MarketDataFeedV3.proto), independently of the generated module the decoder uses: a
test that decodes these checks the .proto as well as the decoder."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def f_varint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value) if value else b""


def f_double(number: int, value: float) -> bytes:
    return tag(number, 1) + struct.pack("<d", value) if value else b""


def f_bytes(number: int, value: bytes) -> bytes:
    return tag(number, 2) + varint(len(value)) + value


def ltpc(ltp: float, ltt: int = 0, ltq: int = 0, cp: float = 0.0) -> bytes:
    return f_double(1, ltp) + f_varint(2, ltt) + f_varint(3, ltq) + f_double(4, cp)


def quote(bid_q: int, bid_p: float, ask_q: int, ask_p: float) -> bytes:
    return f_varint(1, bid_q) + f_double(2, bid_p) + f_varint(3, ask_q) + f_double(4, ask_p)


def ohlc(interval: str, o: float, h: float, low: float, c: float, vol: int = 0, ts: int = 0) -> bytes:
    return (
        f_bytes(1, interval.encode())
        + f_double(2, o)
        + f_double(3, h)
        + f_double(4, low)
        + f_double(5, c)
        + f_varint(6, vol)
        + f_varint(7, ts)
    )


@dataclass
class Market:
    """One instrument's full feed (MarketFullFeed inside FullFeed inside Feed)."""

    ltp: float
    ltt: int = 0
    ltq: int = 0
    cp: float = 0.0
    depth: list[tuple[int, float, int, float]] = field(default_factory=list)
    day: tuple[float, float, float, float] | None = None
    vtt: int = 0
    oi: float = 0.0

    def feed(self) -> bytes:
        market = f_bytes(1, ltpc(self.ltp, self.ltt, self.ltq, self.cp))
        market += f_bytes(2, b"".join(f_bytes(1, quote(*level)) for level in self.depth))
        if self.day is not None:
            market += f_bytes(4, f_bytes(1, ohlc("1d", *self.day)))
        market += f_varint(6, self.vtt) + f_double(7, self.oi)
        full = f_bytes(1, market)  # FullFeed.marketFF
        return f_bytes(2, full) + f_varint(4, 1)  # Feed.fullFeed, requestMode full_d5


def ltpc_feed(ltp: float, ltt: int = 0, cp: float = 0.0) -> bytes:
    return f_bytes(1, ltpc(ltp, ltt, 1, cp))  # Feed.ltpc, requestMode ltpc (0, omitted)


def index_feed(ltp: float, cp: float = 0.0) -> bytes:
    return f_bytes(2, f_bytes(2, f_bytes(1, ltpc(ltp, 0, 0, cp))))  # Feed.fullFeed.indexFF.ltpc


def response(feeds: dict[str, bytes], *, kind: int = 1, current_ts: int = 0) -> bytes:
    """A FeedResponse: type (live_feed = 1), the feeds map (entries: key 1, value 2), currentTs."""
    body = f_varint(1, kind)
    for key, feed in feeds.items():
        body += f_bytes(2, f_bytes(1, key.encode()) + f_bytes(2, feed))
    return body + f_varint(3, current_ts)


def market_info(statuses: dict[str, int]) -> bytes:
    """A market_info FeedResponse (type 2) with segment statuses."""
    info = b"".join(f_bytes(1, f_bytes(1, k.encode()) + f_varint(2, v)) for k, v in statuses.items())
    return f_varint(1, 2) + f_bytes(4, info)
