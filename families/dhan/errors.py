"""DhanHQ v2's answers, mapped to the broker contract's typed errors.

Dhan answers a success with the bare JSON object or array (no envelope; the market-quote calls wrap
theirs as ``{"data": ..., "status": "success"}``) and a failure with a non-2xx status and
``{"errorType": ..., "errorCode": "DH-9xx", "errorMessage": ...}`` (https://dhanhq.co/docs/v2/annexure;
DhanHQ-py dhan_http.py reads exactly these three keys). The trading API's codes:

- DH-901 (invalid or expired access token / client id) -> ``BrokerSessionExpired``;
- DH-902 (no access to the API), DH-903 (account: e.g. a segment not activated), DH-905 (input),
  DH-906 (order refused), DH-907 (no such data) -> ``BrokerRejected``, or its more precise kind where
  Dhan's message says so (``brokers.families.wire.refusal``); on a modify or cancel a refusal that
  says the order does not exist is ``BrokerOrderNotFound``;
- DH-904 (rate limit) and HTTP 429 -> ``BrokerRateLimited`` (not sent);
- DH-908 (internal server error), DH-909 (network error between the API and its OMS) -> ``BrokerUnavailable``
  (the request may have reached the OMS); DH-910 (other) -> ``BrokerUnavailable`` with a 5xx, else rejected;
- the market-data API's numeric codes: 807-810 (token expired, authentication failed, token or
  client id invalid) -> ``BrokerSessionExpired``, 800 (server error) -> ``BrokerUnavailable``, the others
  (805 connections exceeded, 806 data plan, 804/811-814 input) -> ``BrokerRejected``.

An answer that is not JSON, truncated, or not in these shapes -> ``BrokerUnavailable`` (maybe sent).
"""

from __future__ import annotations

from typing import Any

from brokers.adapters.base import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from brokers.families.wire import decode_json, json_answer, message_of, refusal

BROKER = "Dhan"

SESSION_CODES = frozenset({"DH-901", "807", "808", "809", "810"})
RATE_CODES = frozenset({"DH-904"})
MAYBE_SENT_CODES = frozenset({"DH-908", "DH-909", "800"})
REFUSAL_CODES = frozenset({"DH-902", "DH-903", "DH-905", "DH-906", "DH-907"})


def error_of(status: int, payload: Any, *, order_specific: bool = False) -> BrokerError | None:
    """The typed error a Dhan answer means, or None for a success."""
    if not isinstance(payload, dict):
        return None if 200 <= status < 300 else _unexplained(status)
    code = payload.get("errorCode")
    failed = payload.get("status") in {"failure", "failed", "error"}
    if code is None and not failed and 200 <= status < 300:
        return None
    code_text = str(code)[:20] if isinstance(code, str | int) and not isinstance(code, bool) else ""
    remarks = payload.get("remarks")
    if not code_text and isinstance(remarks, dict):  # the market-data API's {"status": "failed", "remarks": {...}}
        inner = remarks.get("error_code")
        code_text = str(inner)[:20] if isinstance(inner, str | int) and not isinstance(inner, bool) else ""
        message = message_of(remarks.get("error_message"), "")
    else:
        message = message_of(payload.get("errorMessage"), "")
    message = message or f"{BROKER} error {code_text or 'without a code'} (HTTP {status})"
    extra: dict[str, Any] = {"http_status": status}
    if code_text:
        extra["error_code"] = code_text
    error_type = payload.get("errorType")
    if isinstance(error_type, str) and error_type:
        extra["error_type"] = error_type[:60]
    if code_text in SESSION_CODES or (not code_text and status == 401):
        return BrokerSessionExpired(message, extra=extra)
    if code_text in RATE_CODES:
        return BrokerRateLimited(message, extra=extra)
    if code_text in MAYBE_SENT_CODES:
        return BrokerUnavailable(message, extra=extra)
    if code_text in REFUSAL_CODES or (status < 500 and code_text):
        return refusal(message, extra=extra, order_specific=order_specific)
    if status >= 500 or not code_text:
        return BrokerUnavailable(message, extra=extra)
    return BrokerRejected(message, extra=extra)  # pragma: no cover - every case is above


def _unexplained(status: int) -> BrokerUnavailable:
    return BrokerUnavailable(
        f"{BROKER} answered HTTP {status} without its error body; the outcome is unknown",
        extra={"http_status": status},
    )


def answer(status: int, content_type: str, body: bytes, *, order_specific: bool = False) -> Any:
    """Return the data of a successful Dhan answer, or raise the typed error it means."""
    if status == 429:  # rate-limited whatever the body; Dhan's own words where it gave them
        try:
            text = decode_json(body).get("errorMessage")
        except (ValueError, RecursionError, AttributeError):
            text = None
        raise BrokerRateLimited(message_of(text, f"{BROKER}: too many requests"), extra={"http_status": status})
    payload = json_answer(status, content_type, body, broker=BROKER)
    error = error_of(status, payload, order_specific=order_specific)
    if error is not None:
        raise error
    return payload


def order_answer(status: int, content_type: str, body: bytes) -> Any:
    """``answer`` for a call naming one order (modify, cancel): "no such order" is BrokerOrderNotFound."""
    return answer(status, content_type, body, order_specific=True)
