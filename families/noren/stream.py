"""NorenOMS's websocket (JSON text messages) as a ``brokers.families.stream.StreamDialect``.

The session opens with ``{"t": "c", "uid", "actid", "susertoken", "source": "API"}``, acknowledged by
``{"t": "ck", "s": "OK"}``; subscriptions are sent once it is acknowledged (touchline ``{"t": "t",
"k": "NSE|22#NFO|35003"}``; order updates ``{"t": "o", "actid"}``), and ``{"t": "h"}`` every few
seconds keeps it alive (the SDK sends it as its ping every 3 s). A touchline starts with ``tk`` (every
field) and continues with ``tf`` carrying only the fields that changed, so the dialect keeps each
token's last full picture and merges every ``tf`` into it (``dk``/``df`` for depth alike). Values are
strings in rupees; ``ft`` is the feed's epoch time. ``om`` messages are order updates.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from brokers.families.stream import Decoded, MalformedFrame, StreamTick
from families.noren import records
from marketdata.quotes import DepthLevel

HEARTBEAT_SECONDS = 3.0
MAX_TOKENS_PER_MESSAGE = 500  # keeps each subscription message a few kilobytes
_FULL = {"tk": "t", "dk": "d"}
_DELTA = {"tf": "t", "df": "d"}
_IGNORED = {"ok", "uk", "udk", "h", "ck"}


class NorenDialect:
    """One session's websocket. ``orders``: subscribe the account's order updates once connected."""

    family = "noren"
    heartbeat_interval: float | None = HEARTBEAT_SECONDS

    def __init__(
        self, *, url: str, uid: str, actid: str, token: str, orders: bool = False, depth: bool = False
    ) -> None:
        self._url, self.uid, self.actid, self._token = url, uid, actid, token
        self.orders, self.depth = orders, depth
        self._lock = threading.Lock()
        self._acked = False
        self._pending: list[str] = []
        self._state: dict[str, dict[str, Any]] = {}  # "NSE|22" -> the merged fields of its last tk and tf

    def __repr__(self) -> str:  # never the token
        return f"NorenDialect({self._url!r}, orders={self.orders})"

    def url(self) -> str:
        return self._url

    def headers(self) -> Mapping[str, str]:
        return {}

    def opening(self) -> Sequence[str]:
        """The connect message; subscriptions wait for its acknowledgement."""
        with self._lock:
            self._acked = False
            self._pending = []
            self._state.clear()
        return [
            json.dumps({"t": "c", "uid": self.uid, "actid": self.actid, "susertoken": self._token, "source": "API"})
        ]

    def subscribe(self, tokens: Sequence[str]) -> Sequence[str]:
        """The touchline (or depth) subscriptions of ``tokens`` ("NSE|22"), held until the connection
        is acknowledged."""
        kind = "d" if self.depth else "t"
        clean = [token for token in tokens if _is_token(token)]
        messages = [
            json.dumps({"t": kind, "k": "#".join(clean[start : start + MAX_TOKENS_PER_MESSAGE])})
            for start in range(0, len(clean), MAX_TOKENS_PER_MESSAGE)
        ]
        with self._lock:
            if not self._acked:
                self._pending.extend(messages)
                return []
        return messages

    def heartbeat(self) -> str:
        return json.dumps({"t": "h"})

    def decode(self, message: str | bytes) -> Decoded:
        """One message: ticks (merged), order updates, or the acknowledgement (answered with the held
        subscriptions). Raises MalformedFrame for a message that is not a JSON object with a ``t``,
        a refused connection, or a tick whose values are not Noren's."""
        try:
            data = json.loads(message)
        except (ValueError, RecursionError, TypeError) as exc:
            raise MalformedFrame("not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            raise MalformedFrame("not a NorenOMS message")
        kind = data["t"]
        if kind == "ck":
            if str(data.get("s", "")).upper() != "OK":
                raise MalformedFrame("NorenOMS refused the websocket session")
            with self._lock:
                self._acked = True
                replies: list[str | bytes] = list(self._pending)
                self._pending = []
            if self.orders:
                replies.append(json.dumps({"t": "o", "actid": self.actid}))
            return Decoded(replies=replies)
        if kind == "om":
            return Decoded(orders=[data])
        if kind in _FULL or kind in _DELTA:
            return Decoded(ticks=[self._tick(kind, data)])
        if kind in _IGNORED:
            return Decoded()
        return Decoded()  # a message type this family does not use (market status, exchange messages)

    def _tick(self, kind: str, data: dict[str, Any]) -> StreamTick:
        exchange, token = data.get("e"), data.get("tk")
        if not isinstance(exchange, str) or not isinstance(token, str) or not _is_token(f"{exchange}|{token}"):
            raise MalformedFrame("a tick without its exchange and token")
        key = f"{exchange}|{token}"
        with self._lock:
            merged = dict(data) if kind in _FULL else {**self._state.get(key, {}), **data}
            try:
                tick = tick_of(key, merged)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise MalformedFrame(f"a tick of {key} with a value that is not Noren's") from exc
            self._state[key] = merged
        return tick


def tick_of(key: str, fields: Mapping[str, Any]) -> StreamTick:
    """A touchline's or depth's merged fields as a StreamTick; raises ValueError for a malformed value."""

    def price(name: str) -> Decimal | None:
        value = records.optional_decimal(fields.get(name))
        return value if value else None

    bids, asks = [], []
    for level in range(1, 6):
        bp, bq = price(f"bp{level}"), records.optional_integer(fields.get(f"bq{level}"))
        if bp and bq:
            bids.append(DepthLevel(bp, bq, records.optional_integer(fields.get(f"bo{level}"), 1)))
        sp, sq = price(f"sp{level}"), records.optional_integer(fields.get(f"sq{level}"))
        if sp and sq:
            asks.append(DepthLevel(sp, sq, records.optional_integer(fields.get(f"so{level}"), 1)))
    return StreamTick(
        token=key,
        ltp=price("lp"),
        ts=records.epoch(fields.get("ft")),
        bid=price("bp1"),
        ask=price("sp1"),
        bid_qty=records.optional_integer(fields.get("bq1")),
        ask_qty=records.optional_integer(fields.get("sq1")),
        volume=records.optional_integer(fields.get("v")),
        oi=records.optional_integer(fields.get("oi")),
        open=price("o"),
        high=price("h"),
        low=price("l"),
        close=price("c"),
        bids=tuple(bids),
        asks=tuple(asks),
    )


def _is_token(token: str) -> bool:
    """``EXCH|token`` with a Noren exchange code and a token of letters and digits (no '#' or '|')."""
    if not isinstance(token, str) or token.count("|") != 1:
        return False
    exchange, number = token.split("|")
    return (
        exchange.isalpha() and exchange.isupper() and 0 < len(exchange) <= 5 and number.isalnum() and len(number) <= 20
    )
