"""Dhan's two websockets as ``brokers.families.stream.StreamDialect``s (DhanHQ-py marketfeed.py and
orderupdate.py; https://dhanhq.co/docs/v2/live-market-feed, /order-update).

Market feed (``MarketDialect``): ``wss://api-feed.dhan.co?version=2&token=<jwt>&clientId=<id>&authType=2``;
subscriptions are JSON, at most 100 instruments a message:
``{"RequestCode": 21, "InstrumentCount": n, "InstrumentList": [{"ExchangeSegment": "NSE_EQ", "SecurityId": "2885"}]}``
(15 ticker, 17 quote, 21 full: we ask for full, which carries five levels of depth). Answers are
binary, little-endian, one or more packets a message, each opening with an 8-byte header: response
code (u8), message length (u16), exchange segment (u8, ``mapping.FEED_SEGMENTS``), security id (u32).
Prices are float32 rupees (rounded here to the paisa, four places for currency), times u32 epoch
seconds. The packets read: 2 ticker (16 bytes), 4 quote (50), 5 open interest (12), 6 previous close
(16), 7 market status (8), 8 full (162, five 20-byte depth levels), 50 disconnection (10, a reason
805-809). Open interest and the previous close are kept and joined to the instrument's next tick.

Order updates (``OrderDialect``): ``wss://api-order-update.dhan.co``; the connection opens with
``{"LoginReq": {"MsgCode": 42, "ClientId": <id>, "Token": <jwt>}, "UserType": "SELF"}``; every order
change then arrives as JSON ``{"Type": "order_alert", "Data": {...}}``, handed on as is to
``DhanAdapter.update_from_stream``. Other JSON messages are ignored.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlencode

from brokers.families.stream import Decoded, MalformedFrame, StreamTick
from families.dhan import mapping
from marketdata.quotes import DepthLevel

logger = logging.getLogger(__name__)

FAMILY = mapping.FAMILY
SUBSCRIBE_FULL = 21
BATCH = 100

HEADER = struct.Struct("<BHBI")
TICKER = struct.Struct("<fI")  # after the header
QUOTE = struct.Struct("<fHIfIIIffff")
OI = struct.Struct("<I")
PREV_CLOSE = struct.Struct("<fI")
FULL = struct.Struct("<fHIfIIIIIIffff")
DEPTH = struct.Struct("<IIHHff")
DISCONNECT = struct.Struct("<H")
SIZES = {2: 16, 4: 50, 5: 12, 6: 16, 7: 8, 8: 162, 50: 10}
DISCONNECT_REASONS = {
    805: "too many websocket connections",
    806: "the account has no data plan",
    807: "the access token has expired",
    808: "the client id is invalid",
    809: "authentication failed",
}
CURRENCY = frozenset({"NSE_CURRENCY", "BSE_CURRENCY"})


def price(value: float, segment: str) -> Decimal | None:
    """A float32 price as the exchange quoted it; None for one that is not a finite positive number."""
    if not math.isfinite(value) or value <= 0:
        return None
    return Decimal(f"{value:.4f}" if segment in CURRENCY else f"{value:.2f}")


def when(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch > 0 else None


@dataclass
class MarketDialect:
    url_base: str
    client_id: str
    access_token: str = field(repr=False)
    family: str = FAMILY
    heartbeat_interval: float | None = None  # Dhan pings; websockets answers its pings
    _oi: dict[str, int] = field(default_factory=dict, repr=False)
    _close: dict[str, Decimal] = field(default_factory=dict, repr=False)

    def url(self) -> str:
        query = urlencode({"version": 2, "token": self.access_token, "clientId": self.client_id, "authType": 2})
        return f"{self.url_base.rstrip('/')}?{query}"

    def headers(self) -> dict[str, str]:
        return {}

    def opening(self) -> list[str | bytes]:
        return []

    def subscribe(self, tokens: Sequence[str]) -> list[str | bytes]:
        """Full-mode subscriptions of these tokens (``NSE_EQ:2885``), 100 a message; a token that is not
        of that shape is left out (logged)."""
        instruments = []
        for token in tokens:
            try:
                segment, security_id = mapping.split_token(token)
            except ValueError:
                logger.warning("dhan feed: %r is not a Dhan token; not subscribed", token[:40])
                continue
            instruments.append({"ExchangeSegment": segment, "SecurityId": security_id})
        return [
            json.dumps(
                {
                    "RequestCode": SUBSCRIBE_FULL,
                    "InstrumentCount": len(batch),
                    "InstrumentList": batch,
                },
                separators=(",", ":"),
            )
            for batch in (instruments[i : i + BATCH] for i in range(0, len(instruments), BATCH))
        ]

    def heartbeat(self) -> str | bytes | None:
        return None

    def decode(self, message: str | bytes) -> Decoded:
        """The ticks of one binary message (packets it cannot read are counted in ``skipped``; the
        rest of a message is not read past a packet whose length is unknown). Raises MalformedFrame for
        a text message or one shorter than a header."""
        if not isinstance(message, bytes | bytearray | memoryview):
            raise MalformedFrame("Dhan's market feed sends binary messages only")
        data = bytes(message)
        if len(data) < HEADER.size:
            raise MalformedFrame(f"a message of {len(data)} bytes is shorter than a packet header")
        decoded = Decoded()
        offset = 0
        while offset + HEADER.size <= len(data):
            code, length, segment_code, security_id = HEADER.unpack_from(data, offset)
            size = SIZES.get(code)
            if size is None:
                # An unknown packet: skip it by the length its header gives, if that is plausible.
                decoded.skipped += 1
                if HEADER.size <= length <= len(data) - offset:
                    offset += length
                    continue
                return decoded
            if offset + size > len(data):
                decoded.skipped += 1
                return decoded
            segment = mapping.FEED_SEGMENTS.get(segment_code)
            if segment is None:
                decoded.skipped += 1
            else:
                tick = self._packet(code, data, offset, mapping.token_of(segment, security_id), segment)
                if tick is not None:
                    decoded.ticks.append(tick)
            offset += size
        if offset != len(data):
            decoded.skipped += 1  # trailing bytes shorter than a header
        return decoded

    def _packet(self, code: int, data: bytes, offset: int, token: str, segment: str) -> StreamTick | None:
        body = offset + HEADER.size
        if code == 2:
            ltp, ltt = TICKER.unpack_from(data, body)
            return self._tick(token, price(ltp, segment), when(ltt))
        if code == 4:
            ltp, _ltq, ltt, _atp, volume, _sell, _buy, o, c, h, low = QUOTE.unpack_from(data, body)
            return self._tick(
                token,
                price(ltp, segment),
                when(ltt),
                volume=volume,
                open=price(o, segment),
                close=price(c, segment),
                high=price(h, segment),
                low=price(low, segment),
            )
        if code == 5:
            (self._oi[token],) = OI.unpack_from(data, body)
            return None
        if code == 6:
            close, _prev_oi = PREV_CLOSE.unpack_from(data, body)
            value = price(close, segment)
            if value is not None:
                self._close[token] = value
            return None
        if code == 7:
            return None
        if code == 50:
            (reason,) = DISCONNECT.unpack_from(data, body)
            logger.warning("dhan feed: the server disconnects (%s: %s)", reason, DISCONNECT_REASONS.get(reason, "?"))
            return None
        # code 8: full
        ltp, _ltq, ltt, _atp, volume, _sell, _buy, oi, _oi_high, _oi_low, o, c, h, low = FULL.unpack_from(data, body)
        bids, asks = [], []
        for level in range(5):
            bid_qty, ask_qty, _bo, _ao, bid, ask = DEPTH.unpack_from(data, body + FULL.size + level * DEPTH.size)
            if (bid_price := price(bid, segment)) is not None and bid_qty:
                bids.append(DepthLevel(bid_price, bid_qty))
            if (ask_price := price(ask, segment)) is not None and ask_qty:
                asks.append(DepthLevel(ask_price, ask_qty))
        self._oi[token] = oi
        return self._tick(
            token,
            price(ltp, segment),
            when(ltt),
            volume=volume,
            open=price(o, segment),
            close=price(c, segment),
            high=price(h, segment),
            low=price(low, segment),
            bids=tuple(bids),
            asks=tuple(asks),
        )

    def _tick(self, token: str, ltp: Decimal | None, ts: datetime | None, **values) -> StreamTick | None:
        if ltp is None:
            return None
        if values.get("close") is None:
            values["close"] = self._close.get(token)
        bids, asks = values.get("bids", ()), values.get("asks", ())
        return StreamTick(
            token=token,
            ltp=ltp,
            ts=ts,
            oi=self._oi.get(token, 0),
            bid=bids[0].price if bids else None,
            ask=asks[0].price if asks else None,
            bid_qty=bids[0].quantity if bids else 0,
            ask_qty=asks[0].quantity if asks else 0,
            **values,
        )


@dataclass
class OrderDialect:
    url_base: str
    client_id: str
    access_token: str = field(repr=False)
    family: str = FAMILY
    heartbeat_interval: float | None = None

    def url(self) -> str:
        return self.url_base

    def headers(self) -> dict[str, str]:
        return {}

    def opening(self) -> list[str | bytes]:
        login = {
            "LoginReq": {"MsgCode": 42, "ClientId": self.client_id, "Token": self.access_token},
            "UserType": "SELF",
        }
        return [json.dumps(login, separators=(",", ":"))]

    def subscribe(self, tokens: Sequence[str]) -> list[str | bytes]:
        return []  # every order of the account arrives without subscribing

    def heartbeat(self) -> str | bytes | None:
        return None

    def decode(self, message: str | bytes) -> Decoded:
        """An order alert as one order message; other JSON messages as nothing. Raises MalformedFrame
        for a message that is not a JSON object."""
        try:
            payload = json.loads(message, parse_float=Decimal)
        except (ValueError, TypeError, RecursionError):
            raise MalformedFrame("an order-update message that is not JSON") from None
        if not isinstance(payload, dict):
            raise MalformedFrame("an order-update message that is not a JSON object")
        if payload.get("Type", payload.get("type")) == "order_alert":
            if not isinstance(payload.get("Data", payload.get("data")), dict):
                raise MalformedFrame("an order alert without its Data object")
            return Decoded(orders=[payload])
        return Decoded()
