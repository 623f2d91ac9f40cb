"""An encoder of SmartWebSocketV2's binary packets for the tests, written from the documented layout
(little-endian; mode, exchange type, 25-byte token, sequence, exchange time in ms, LTP; QUOTE adds the
last traded quantity, average price, volume, total buy and sell quantity as doubles, open, high, low,
close; SNAP_QUOTE adds the last traded time, open interest, its change, five buy and five sell levels
of {u16 flag 1 buy / 0 sell, i64 quantity, i64 price, u16 orders}, the circuit limits and the 52-week
high and low). Independent of the decoder in families/angel/stream.py."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from decimal import Decimal

LTP, QUOTE, SNAP_QUOTE = 1, 2, 3


def paise(price: Decimal, divisor: int = 100) -> int:
    return int((price * divisor).to_integral_value())


@dataclass
class Packet:
    token: str
    ltp: Decimal
    exchange_type: int = 1
    sequence: int = 1
    exchange_ms: int = 1_767_000_000_000
    last_qty: int = 5
    average: Decimal = Decimal("0")
    volume: int = 123_456
    total_buy: float = 1000.0
    total_sell: float = 2000.0
    open: Decimal = Decimal("990")
    high: Decimal = Decimal("1010")
    low: Decimal = Decimal("985")
    close: Decimal = Decimal("995")
    oi: int = 0
    bids: list[tuple[Decimal, int, int]] = field(default_factory=list)  # (price, quantity, orders)
    asks: list[tuple[Decimal, int, int]] = field(default_factory=list)
    divisor: int = 100


def encode(packet: Packet, mode: int = LTP) -> bytes:
    d = packet.divisor
    token = packet.token.encode("ascii")
    out = struct.pack("<BB", mode, packet.exchange_type) + token + b"\x00" * (25 - len(token))
    out += struct.pack("<qqq", packet.sequence, packet.exchange_ms, paise(packet.ltp, d))
    if mode == LTP:
        return out
    out += struct.pack("<qqq", packet.last_qty, paise(packet.average, d), packet.volume)
    out += struct.pack("<dd", packet.total_buy, packet.total_sell)
    out += struct.pack("<qqqq", *(paise(p, d) for p in (packet.open, packet.high, packet.low, packet.close)))
    if mode == QUOTE:
        return out
    out += struct.pack("<qqq", packet.exchange_ms, packet.oi, 0)
    levels = [(1, p, q, o) for p, q, o in packet.bids[:5]] + [(0, p, q, o) for p, q, o in packet.asks[:5]]
    levels += [(0, Decimal(0), 0, 0)] * (10 - len(levels))
    for flag, price, quantity, orders in levels:
        out += struct.pack("<HqqH", flag, quantity, paise(price, d), orders)
    out += struct.pack("<qqqq", paise(packet.high * 2, d), paise(packet.low / 2, d), 0, 0)
    assert len(out) == 379
    return out
