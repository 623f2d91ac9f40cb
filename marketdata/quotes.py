"""The last quote per instrument: the one place every reader (paper exchange, RMS, pages) asks.

Kept in Redis (a hash per instrument) in the full stack so that every process sees the feed's
latest values, and in this process's memory in standalone mode, where the feed runs in-process.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from marketdata.errors import QuotesUnavailable

_PRICE_FIELDS = ("ltp", "bid", "ask", "open", "high", "low", "close")
_OHLC = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class DepthLevel:
    price: Decimal
    quantity: int
    orders: int = 1


@dataclass(frozen=True, slots=True)
class Quote:
    """A snapshot of one instrument's market: prices are Decimal, ``ts`` is UTC-aware."""

    instrument_id: int
    ltp: Decimal
    ts: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty: int = 0
    ask_qty: int = 0
    volume: int = 0
    oi: int = 0
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None  # previous session's close, the base of "change"
    bids: tuple[DepthLevel, ...] = field(default_factory=tuple)
    asks: tuple[DepthLevel, ...] = field(default_factory=tuple)

    @property
    def change(self) -> Decimal | None:
        return None if self.close is None else self.ltp - self.close

    def to_json(self) -> str:
        # Written out rather than dataclasses.asdict, which deep-copies and was most of the feed's CPU.
        data = {
            "instrument_id": self.instrument_id,
            "ltp": str(self.ltp),
            "ts": self.ts.isoformat(),
            **{name: None if (value := getattr(self, name)) is None else str(value) for name in ("bid", "ask")},
            "bid_qty": self.bid_qty,
            "ask_qty": self.ask_qty,
            "volume": self.volume,
            "oi": self.oi,
            **{name: None if (value := getattr(self, name)) is None else str(value) for name in _OHLC},
            "bids": [{"price": str(lv.price), "quantity": lv.quantity, "orders": lv.orders} for lv in self.bids],
            "asks": [{"price": str(lv.price), "quantity": lv.quantity, "orders": lv.orders} for lv in self.asks],
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Quote:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: dict) -> Quote:
        """Build a quote from its parsed wire form (``json.loads(quote.to_json())``)."""
        prices = {k: Decimal(data[k]) for k in _PRICE_FIELDS if data.get(k) is not None}
        depth = {
            side: tuple(DepthLevel(Decimal(lv["price"]), int(lv["quantity"]), int(lv["orders"])) for lv in data[side])
            for side in ("bids", "asks")
            if data.get(side)
        }
        return cls(
            instrument_id=int(data["instrument_id"]),
            ts=datetime.fromisoformat(data["ts"]).astimezone(UTC),
            bid_qty=int(data.get("bid_qty", 0)),
            ask_qty=int(data.get("ask_qty", 0)),
            volume=int(data.get("volume", 0)),
            oi=int(data.get("oi", 0)),
            **prices,
            **depth,
        )


class _MemoryStore:
    def __init__(self) -> None:
        self._quotes: dict[int, Quote] = {}
        self._lock = threading.Lock()

    def set_many(self, quotes: list[Quote]) -> None:
        with self._lock:
            for quote in quotes:
                self._quotes[quote.instrument_id] = quote

    def get_many(self, instrument_ids: list[int]) -> dict[int, Quote]:
        with self._lock:
            return {i: self._quotes[i] for i in instrument_ids if i in self._quotes}

    def clear(self) -> None:
        with self._lock:
            self._quotes.clear()


class _RedisStore:
    """Raises ``QuotesUnavailable`` (503) while Redis cannot be reached: a caller never mistakes an
    outage for an instrument without a price."""

    KEY = "quotes:last"  # one hash: field = instrument id, value = Quote JSON

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis
        self._client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def set_many(self, quotes: list[Quote]) -> None:
        if quotes:
            try:
                self._client.hset(self.KEY, mapping={str(q.instrument_id): q.to_json() for q in quotes})
            except self._redis.RedisError as exc:
                raise _unavailable(exc) from exc

    def get_many(self, instrument_ids: list[int]) -> dict[int, Quote]:
        if not instrument_ids:
            return {}
        try:
            raws = self._client.hmget(self.KEY, [str(i) for i in instrument_ids])
        except self._redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return {i: Quote.from_json(raw) for i, raw in zip(instrument_ids, raws, strict=True) if raw is not None}

    def clear(self) -> None:
        self._client.delete(self.KEY)


def _unavailable(exc: Exception) -> QuotesUnavailable:
    return QuotesUnavailable(
        "The market data store cannot be reached: no price can be read now. Nothing was done; try again shortly.",
        extra={"error": type(exc).__name__},
    )


_store: _MemoryStore | _RedisStore | None = None
_store_lock = threading.Lock()


def store() -> _MemoryStore | _RedisStore:
    """Return the process's quote store (Redis when REDIS_URL is set, else memory)."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = _RedisStore(settings.REDIS_URL) if settings.REDIS_URL else _MemoryStore()
    return _store


def set_quotes(quotes: list[Quote]) -> None:
    store().set_many(quotes)


def get_quote(instrument_id: int) -> Quote | None:
    return store().get_many([instrument_id]).get(instrument_id)


def get_quotes(instrument_ids: list[int]) -> dict[int, Quote]:
    return store().get_many(list(instrument_ids))
