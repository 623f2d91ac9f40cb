"""Upstox's two websockets as ``brokers.families.stream`` dialects.

Market data v3 (``MarketDialect``): ``wss://api.upstox.com/v3/feed/market-data-feed`` with
``Authorization: Bearer <access_token>`` (Upstox redirects it to a one-time authorized URL; the
client follows). Requests are JSON sent as binary frames: ``{"guid", "method": "sub", "data":
{"mode", "instrumentKeys"}}``; every message from Upstox is a binary protobuf ``FeedResponse``
(``MarketDataFeedV3.proto``): per instrument key a ``Feed`` holding last price, time and quantity and
previous close (``ltpc``), or the full feed (depth, day OHLC, volume, open interest). Prices are
rupees as doubles. Sources: upstox-python ``feeder/market_data_feeder_v3.py`` and the proto.

Portfolio stream (``PortfolioDialect``): ``wss://api.upstox.com/v2/feed/portfolio-stream-feed?
update_types=order`` with the same header; no request is sent; each message is a JSON order update,
the shape Upstox's webhook documents (``update_type: "order"``, the order-book fields, ``tag``).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from brokers import catalogue
from brokers.catalogue import UnknownBrokerEntry
from brokers.families.stream import Decoded, MalformedFrame, StreamTick
from families.upstox import MarketDataFeedV3_pb2 as pb
from marketdata.quotes import DepthLevel

FAMILY = "upstox"
MODE = "full"  # last price, five levels of depth, day OHLC, volume and open interest
MAX_KEYS_PER_REQUEST = 100
MAX_PRICE = 1e9  # no Indian instrument trades above; a bigger double is a corrupt message


class MarketDialect:
    """Upstox's market-data feed v3 for one signed-in account."""

    family = FAMILY
    heartbeat_interval: float | None = None  # websocket pings keep it open

    def __init__(self, *, broker: str, access_token: str, mode: str = MODE) -> None:
        self.broker, self._token, self.mode = broker, access_token, mode

    def __repr__(self) -> str:
        return f"MarketDialect({self.broker!r})"

    def url(self) -> str:
        return catalogue.endpoint(self.broker, "ws")

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "*/*"}

    def opening(self) -> Sequence[str | bytes]:
        return ()

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        return [
            subscription(list(tokens[start : start + MAX_KEYS_PER_REQUEST]), mode=self.mode)
            for start in range(0, len(tokens), MAX_KEYS_PER_REQUEST)
        ]

    def heartbeat(self) -> str | bytes | None:
        return None

    def decode(self, message: str | bytes) -> Decoded:
        return decode_feed(message)


def subscription(keys: list[str], *, mode: str = MODE, method: str = "sub") -> bytes:
    """One request (``sub``, ``unsub``, ``change_mode``) as the binary frame Upstox reads."""
    body = {"guid": uuid.uuid4().hex, "method": method, "data": {"mode": mode, "instrumentKeys": keys}}
    return json.dumps(body, separators=(",", ":")).encode()


def decode_feed(message: str | bytes) -> Decoded:
    """One ``FeedResponse``'s ticks; a market-info message carries none. Raises MalformedFrame for a
    message that is not a FeedResponse; a feed inside it with an impossible value is skipped (counted)."""
    if not isinstance(message, bytes | bytearray):
        raise MalformedFrame("Upstox's market feed sends binary protobuf messages only")
    response = pb.FeedResponse()
    try:
        response.ParseFromString(bytes(message))
    except Exception as error:  # DecodeError, or a RuntimeWarning-turned-error on a corrupt varint
        raise MalformedFrame(f"not a FeedResponse ({type(error).__name__})") from error
    decoded = Decoded()
    for key, feed in response.feeds.items():
        try:
            tick = tick_of(key, feed)
        except ValueError:
            decoded.skipped += 1
            continue
        if tick is not None:
            decoded.ticks.append(tick)
    return decoded


def tick_of(key: str, feed: Any) -> StreamTick | None:
    """One instrument's ``Feed`` as a StreamTick (None for a feed without a last price); raises
    ValueError for a non-finite, negative or absurd number."""
    kind = feed.WhichOneof("FeedUnion")
    depth: Sequence[Any] = ()
    ohlc: Sequence[Any] = ()
    volume, oi = 0, 0.0
    if kind == "ltpc":
        ltpc = feed.ltpc
    elif kind == "fullFeed":
        full = feed.fullFeed
        which = full.WhichOneof("FullFeedUnion")
        if which == "marketFF":
            market = full.marketFF
            ltpc, depth, ohlc = market.ltpc, market.marketLevel.bidAskQuote, market.marketOHLC.ohlc
            volume, oi = market.vtt, market.oi
        elif which == "indexFF":
            ltpc, ohlc = full.indexFF.ltpc, full.indexFF.marketOHLC.ohlc
        else:
            return None
    elif kind == "firstLevelWithGreeks":
        first = feed.firstLevelWithGreeks
        ltpc, depth, volume, oi = first.ltpc, (first.firstDepth,), first.vtt, first.oi
    else:
        return None
    ltp = _price(ltpc.ltp)
    if ltp is None:
        return None
    bids = tuple(DepthLevel(p, _quantity(q.bidQ)) for q in depth if (p := _price(q.bidP)) is not None)
    asks = tuple(DepthLevel(p, _quantity(q.askQ)) for q in depth if (p := _price(q.askP)) is not None)
    day = next((bar for bar in ohlc if bar.interval == "1d"), None)
    return StreamTick(
        token=key,
        ltp=ltp,
        ts=_time(ltpc.ltt),
        bid=bids[0].price if bids else None,
        ask=asks[0].price if asks else None,
        bid_qty=bids[0].quantity if bids else 0,
        ask_qty=asks[0].quantity if asks else 0,
        volume=_quantity(volume),
        oi=_quantity(oi),
        open=_price(day.open) if day is not None else None,
        high=_price(day.high) if day is not None else None,
        low=_price(day.low) if day is not None else None,
        close=_price(ltpc.cp),
        bids=bids,
        asks=asks,
    )


def _price(value: float) -> Decimal | None:
    """A protobuf double in rupees as a Decimal (its shortest repr); None for 0 (absent)."""
    if not math.isfinite(value) or value < 0 or value > MAX_PRICE:
        raise ValueError(f"price {value!r}")
    return Decimal(repr(value)) if value > 0 else None


def _quantity(value: float | int) -> int:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"quantity {value!r}")
    if value < 0 or value > 10**15:
        raise ValueError(f"quantity {value!r}")
    return int(value)


def _time(millis: int) -> datetime | None:
    """Epoch milliseconds as an aware UTC datetime; None for 0 or one outside 2000-2100."""
    if not 946_684_800_000 <= millis <= 4_102_444_800_000:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


class PortfolioDialect:
    """Upstox's portfolio stream (order updates only) for one signed-in account."""

    family = FAMILY
    heartbeat_interval: float | None = None

    def __init__(self, *, broker: str, access_token: str) -> None:
        self.broker, self._token = broker, access_token

    def __repr__(self) -> str:
        return f"PortfolioDialect({self.broker!r})"

    def url(self) -> str:
        return portfolio_url(self.broker)

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "*/*"}

    def opening(self) -> Sequence[str | bytes]:
        return ()

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str | bytes]:
        return ()  # the stream carries every order of the account; nothing to subscribe

    def heartbeat(self) -> str | bytes | None:
        return None

    def decode(self, message: str | bytes) -> Decoded:
        return decode_portfolio(message)


def portfolio_url(broker: str) -> str:
    """The registry's ``order_ws`` for the broker, else the portfolio stream on its API host."""
    try:
        base = catalogue.endpoint(broker, "order_ws")
    except UnknownBrokerEntry:
        api = urlsplit(catalogue.endpoint(broker, "api"))
        scheme = "wss" if api.scheme == "https" else "ws"
        base = urlunsplit((scheme, api.netloc, api.path.rstrip("/") + "/v2/feed/portfolio-stream-feed", "", ""))
    return base if "?" in base else f"{base}?update_types=order"


def decode_portfolio(message: str | bytes) -> Decoded:
    """One portfolio-stream message: an order update goes to ``orders``; a position, holding or GTT
    update is none of ours. Raises MalformedFrame for a message that is not a JSON object."""
    try:
        body = json.loads(message, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise MalformedFrame("not JSON") from error
    if not isinstance(body, dict):
        raise MalformedFrame("not a JSON object")
    if body.get("update_type", "order") != "order":
        return Decoded()
    if not isinstance(body.get("order_id"), str) or not isinstance(body.get("status"), str):
        raise MalformedFrame("an order update without its order id or status")
    return Decoded(orders=[body])
