"""An encoder of Kite ticker frames for the tests, written from the published packet layout
(https://kite.trade/docs/connect/v3/websocket) and independent of ``kite.ticker``: it lays the fields
out byte by byte, so the decoder is checked against the documentation rather than against itself.

Prices are given as Decimal rupees and turned into integers with the segment's divisor here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# The documented divisors: currency derivatives on NSE (segment 3) and BSE (segment 6); paise elsewhere.
DIVISORS = {3: Decimal(10_000_000), 6: Decimal(10_000)}
SEGMENTS = {"NSE": 1, "NFO": 2, "CDS": 3, "BSE": 4, "BFO": 5, "BCD": 6, "MCX": 7, "MCXSX": 8, "INDICES": 9}


def token(exchange_token: int, segment: str) -> int:
    return exchange_token * 256 + SEGMENTS[segment]


def _int32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=True)


def _uint32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=False)


def _price(value: Decimal, instrument: int) -> bytes:
    scaled = value * DIVISORS.get(instrument % 256, Decimal(100))
    assert scaled == scaled.to_integral_value(), f"{value} is not a whole number of the segment's units"
    return _int32(int(scaled))


def _seconds(when: datetime | None) -> bytes:
    return _uint32(0 if when is None else int(when.timestamp()))


@dataclass
class Level:
    price: Decimal
    quantity: int
    orders: int


@dataclass
class Packet:
    token: int
    ltp: Decimal
    last_quantity: int = 0
    average: Decimal = Decimal(0)
    volume: int = 0
    buy_quantity: int = 0
    sell_quantity: int = 0
    open: Decimal = Decimal(0)
    high: Decimal = Decimal(0)
    low: Decimal = Decimal(0)
    close: Decimal = Decimal(0)
    change: Decimal = Decimal(0)
    last_trade_time: datetime | None = None
    oi: int = 0
    oi_high: int = 0
    oi_low: int = 0
    timestamp: datetime | None = None
    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)


def ltp_packet(p: Packet) -> bytes:
    return _uint32(p.token) + _price(p.ltp, p.token)


def index_packet(p: Packet, *, full: bool) -> bytes:
    """28 bytes (quote) or 32 (full): token, LTP, high, low, open, close, change, [exchange time]."""
    body = (
        _uint32(p.token)
        + _price(p.ltp, p.token)
        + _price(p.high, p.token)
        + _price(p.low, p.token)
        + _price(p.open, p.token)
        + _price(p.close, p.token)
        + _price(p.change, p.token)
    )
    return body + _seconds(p.timestamp) if full else body


def _depth_entry(level: Level | None, instrument: int) -> bytes:
    if level is None:
        return bytes(12)
    return _uint32(level.quantity) + _price(level.price, instrument) + level.orders.to_bytes(2, "big") + b"\0\0"


def quote_packet(p: Packet, *, full: bool) -> bytes:
    """44 bytes (quote) or 184 (full, with the market depth)."""
    body = b"".join(
        [
            _uint32(p.token),
            _price(p.ltp, p.token),
            _uint32(p.last_quantity),
            _price(p.average, p.token),
            _uint32(p.volume),
            _uint32(p.buy_quantity),
            _uint32(p.sell_quantity),
            _price(p.open, p.token),
            _price(p.high, p.token),
            _price(p.low, p.token),
            _price(p.close, p.token),
        ]
    )
    assert len(body) == 44
    if not full:
        return body
    body += _seconds(p.last_trade_time) + _uint32(p.oi) + _uint32(p.oi_high) + _uint32(p.oi_low) + _seconds(p.timestamp)
    for side in (p.bids, p.asks):
        for i in range(5):
            body += _depth_entry(side[i] if i < len(side) else None, p.token)
    assert len(body) == 184
    return body


def frame(*packets: bytes) -> bytes:
    """A binary message: the number of packets, then each packet behind its length."""
    out = len(packets).to_bytes(2, "big")
    for packet in packets:
        out += len(packet).to_bytes(2, "big") + packet
    return out


HEARTBEAT = b"\x00"
