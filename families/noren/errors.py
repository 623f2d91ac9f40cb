"""NorenOMS's answers mapped to the broker contract's typed errors.

Noren answers a call with a JSON object ``{"stat": "Ok", ...}`` or ``{"stat": "Not_Ok", "emsg": ...}``,
usually with HTTP 200 whatever the outcome; the books (OrderBook, TradeBook, PositionBook, Holdings,
SingleOrdHist) answer a JSON array on success and a ``Not_Ok`` object otherwise, an empty book
included (``emsg`` "Error Occurred : 5 \"no data\""). The mapping, each error keeping Noren's message:

- ``emsg`` starting "Session Expired" ("Session Expired :  Invalid Session Key") -> ``BrokerSessionExpired``;
- "Server Timeout" (the API's OMS did not answer in time) -> ``BrokerUnavailable`` (maybe sent);
- "no data" from a book -> an empty book;
- "too many requests" / "rate limit" in the message, or HTTP 429 -> ``BrokerRateLimited`` (not sent);
- any other ``Not_Ok`` -> ``brokers.families.wire.refusal`` (margin, market closed, segment, and for a
  modify or cancel "Order not found" -> ``BrokerOrderNotFound``);
- a body that is not JSON, a JSON value of another shape, or a 5xx without ``Not_Ok`` -> ``BrokerUnavailable``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from brokers.adapters.base import BrokerError, BrokerRateLimited, BrokerSessionExpired, BrokerUnavailable
from brokers.families.wire import json_answer, message_of, refusal

BROKER = "NorenOMS"
_SESSION = re.compile(r"^\s*session expired\b|invalid session key", re.I)
_TIMEOUT = re.compile(r"^\s*server timeout\b", re.I)
_NO_DATA = re.compile(r"\bno data\b", re.I)
_RATE = re.compile(r"too many requests|rate limit", re.I)


@dataclass(frozen=True, slots=True)
class NotOk:
    """A ``Not_Ok`` answer that is the call's to judge (a refusal, or an empty book)."""

    message: str
    http_status: int

    @property
    def no_data(self) -> bool:
        return bool(_NO_DATA.search(self.message))

    def error(self, *, order_specific: bool = False) -> BrokerError:
        """The refusal this answer is."""
        return refusal(self.message, extra={"http_status": self.http_status}, order_specific=order_specific)


def answer(status: int, content_type: str, body: bytes) -> Any:
    """The JSON object or array of an ``Ok`` answer, or a ``NotOk`` for a refusal; raises the typed
    error of the module docstring for an expired session, a timeout at the OMS, a rate limit, a
    malformed answer or a 5xx."""
    payload = json_answer(status, content_type, body, broker=BROKER)
    extra = {"http_status": status}
    if isinstance(payload, list):
        if status >= 500:
            raise BrokerUnavailable(f"{BROKER} answered HTTP {status}; the outcome is unknown", extra=extra)
        return payload
    if not isinstance(payload, dict) or payload.get("stat") not in {"Ok", "Not_Ok"}:
        raise BrokerUnavailable(
            f"{BROKER} answered HTTP {status} with a body that is not its envelope; the outcome is unknown",
            extra=extra,
        )
    if payload["stat"] == "Ok":
        if status >= 400:
            raise BrokerUnavailable(f"{BROKER} answered HTTP {status}; the outcome is unknown", extra=extra)
        return payload
    message = message_of(payload.get("emsg"), f"{BROKER} refused the request (HTTP {status})")
    if _SESSION.search(message):
        raise BrokerSessionExpired(message, extra=extra)
    if _RATE.search(message):
        raise BrokerRateLimited(message, extra=extra)
    if _TIMEOUT.search(message) or status >= 500:
        raise BrokerUnavailable(f"{BROKER}: {message}; the outcome is unknown", extra=extra)
    return NotOk(message, status)
