"""Fyers API v3's answers mapped to the broker contract's typed errors (``brokers.families.wire`` does
the transport's part).

Fyers answers every call with ``{"s": "ok" | "error", "code": <int>, "message": "..."}`` plus the
call's own key (``id``, ``orderBook``, ``tradeBook``, ...); an error's ``code`` is a negative integer
(the SDK's error table, "FYERS_MyAPI - API Error Codes and Messages"). The mapping, each error with
Fyers' message and ``extra.fyers_code``:

- HTTP 401, or -8 / -15 / -16 / -17 (token expired, invalid, user not authenticated) ->
  ``BrokerSessionExpired``: sign in again.
- HTTP 429 or -353 "API Limit exceeded" -> ``BrokerRateLimited`` (not sent).
- -201, -202, -204, -205 "Connection error" (Fyers could not finish with the exchange) and -96
  "An unexpected error occurred", or any error with a 5xx -> ``BrokerUnavailable``: the request may
  have reached the exchange; the order system reconciles.
- -209 / -159 "Please provide a valid order number" on a modify or cancel -> ``BrokerOrderNotFound``.
- any other error (-101 order type, -310 quantity, -392 tick size, -161 already cancelled, -162
  already traded, -371 bad appIdHash, an RMS refusal...) -> ``BrokerRejected``, or its more precise kind
  when the message says so (insufficient funds, market closed, segment not enabled).
- a body that is not this envelope -> ``BrokerUnavailable`` (the outcome is unknown).
"""

from __future__ import annotations

from typing import Any

from brokers.adapters.base import (
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from brokers.families.wire import json_answer, message_of, refusal

BROKER = "Fyers"
SESSION_CODES = frozenset({-8, -15, -16, -17})
RATE_LIMIT_CODES = frozenset({-353})
MAYBE_SENT_CODES = frozenset({-96, -201, -202, -204, -205})
ORDER_NOT_FOUND_CODES = frozenset({-209, -159})


def answer(status: int, content_type: str, body: bytes, *, order_specific: bool = False) -> dict[str, Any]:
    """The whole answer object of a successful call, or the typed error the answer means."""
    payload = json_answer(status, content_type, body, broker=BROKER)
    if not isinstance(payload, dict) or payload.get("s") not in ("ok", "error"):
        raise BrokerUnavailable(
            f"Fyers answered HTTP {status} without its envelope; the outcome is unknown", extra={"http_status": status}
        )
    raw_code = payload.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    if payload["s"] == "ok" and status < 300:
        return payload
    message = message_of(payload.get("message"), f"Fyers error {code} (HTTP {status})")
    extra: dict[str, Any] = {"http_status": status, "fyers_code": code}
    if status == 401 or code in SESSION_CODES:
        raise BrokerSessionExpired(message, extra=extra)
    if code in RATE_LIMIT_CODES:
        raise BrokerRateLimited(message, extra=extra)
    if code in MAYBE_SENT_CODES or status >= 500:
        raise BrokerUnavailable(message, extra=extra)
    if payload["s"] == "ok":  # "ok" beside an HTTP error status: not the documented shape
        raise BrokerUnavailable(f"Fyers answered HTTP {status} with s=ok; the outcome is unknown", extra=extra)
    if order_specific and code in ORDER_NOT_FOUND_CODES:
        raise BrokerOrderNotFound(message, extra=extra)
    raise refusal(message, extra=extra, order_specific=order_specific)
