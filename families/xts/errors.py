"""XTS's answers mapped to the broker contract's typed errors.

Every XTS answer is a JSON envelope ``{"type": "success"|"error", "code", "description", "result"}``
(symphonyfintech/xts-pythonclient-api-sdk, Connect.py ``_request``). On top of ``wire.json_answer``
(429 -> ``BrokerRateLimited``; a body that is not JSON -> ``BrokerUnavailable``):

- ``type`` "success" -> its ``result``;
- an error whose description is "Invalid Token" (the SDK's ``XTSTokenException``, answered with 400),
  or any error with HTTP 401/403 -> ``BrokerSessionExpired``: the session is dead, nothing was done;
- an error with a 5xx status -> ``BrokerUnavailable``: XTS's OMS may have acted;
- any other error -> ``wire.refusal`` of its description, with "Bad Request"'s ``result.errors``
  (the SDK's ``XTSInputException``) appended, so the broker's words reach the order;
- a 2xx body that is not the envelope, or an envelope without ``type`` -> ``BrokerUnavailable``.
"""

from __future__ import annotations

import re
from typing import Any

from brokers.adapters.base import BrokerError, BrokerSessionExpired, BrokerUnavailable
from brokers.families.wire import json_answer, message_of, refusal

_INVALID_TOKEN = re.compile(
    r"invalid token|token (?:is )?(?:expired|invalid)|session (?:is )?(?:expired|invalid)", re.I
)


def answer(status: int, content_type: str, body: bytes, *, broker: str, order_specific: bool = False) -> Any:
    """The ``result`` of an XTS answer, or the typed error it means (see the module docstring)."""
    payload = json_answer(status, content_type, body, broker=broker)
    kind = payload.get("type") if isinstance(payload, dict) else None
    if kind == "success" and 200 <= status < 300:
        return payload.get("result")
    if kind != "error":
        raise BrokerUnavailable(
            f"{broker} answered HTTP {status} outside its envelope; the outcome is unknown",
            extra={"http_status": status},
        )
    raise error_of(status, payload, broker=broker, order_specific=order_specific)


def error_of(status: int, payload: dict[str, Any], *, broker: str, order_specific: bool = False) -> BrokerError:
    """The typed error of an XTS error envelope answered with HTTP ``status``."""
    raw_code = payload.get("code")
    code = raw_code if isinstance(raw_code, str) else ""
    message = message_of(payload.get("description"), f"{broker} refused the request")
    details = _details(payload.get("result"))
    if details and details not in message:
        message = message_of(f"{message}: {details}", message)
    extra = {"http_status": status, "broker_code": code[:40]}
    if status in (401, 403) or _INVALID_TOKEN.search(message):
        return BrokerSessionExpired(f"{broker}: {message}", extra=extra)
    if status >= 500:
        return BrokerUnavailable(
            f"{broker} failed after the request was sent ({message}); the outcome is unknown", extra=extra
        )
    return refusal(message, extra=extra, order_specific=order_specific)


def _details(result: Any) -> str:
    """The messages of a "Bad Request"'s ``result.errors`` (a list of strings or of objects with messages)."""
    errors = result.get("errors") if isinstance(result, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors[:10]:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict):
            text = item.get("messages") or item.get("message") or item.get("field")
            parts.append(", ".join(map(str, text)) if isinstance(text, list) else str(text or ""))
    return "; ".join(part for part in parts if part)
