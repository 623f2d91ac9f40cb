"""Kite Connect's answers and transport failures, mapped to the broker contract's typed errors.

Kite answers every call with a JSON envelope: ``{"status": "success", "data": ...}`` or
``{"status": "error", "message": ..., "error_type": "<Name>Exception"}`` beside a 4xx/5xx status
(https://kite.trade/docs/connect/v3/exceptions/; pykiteconnect treats a body as an error when
``status`` is ``"error"`` or ``error_type`` is present). The mapping, each error carrying Kite's message:

- ``TokenException`` (403): the session expired or was revoked -> ``BrokerSessionExpired``.
- ``InputException``, ``OrderException``, ``UserException``, ``HoldingException``,
  ``PermissionException``: Kite refused the request -> ``BrokerRejected``, or its more precise kinds
  when the message says so (insufficient funds, market closed, segment not enabled, unknown order).
- ``MarginException`` ("insufficient funds, required for the order placement") ->
  ``BrokerInsufficientMargin``.
- ``NetworkException`` (the API could not talk to its OMS) and ``DataException`` (the API could not
  understand the OMS's answer): the request may have reached the OMS -> ``BrokerUnavailable``.
- ``GeneralException`` or an unknown type: ``BrokerUnavailable`` with a 5xx status (maybe sent),
  else ``BrokerRejected``.
- HTTP 429 -> ``BrokerRateLimited`` (not sent), whatever the body.
- A body that is not the envelope (not JSON, truncated, wrong shape), or a 5xx without a Kite error
  -> ``BrokerUnavailable``: the request reached Kite and what it did is unknown.

Transport failures (``transport_error``): httpx's ``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``
and the other errors raised before a byte of the request is written mean the request was not sent ->
``BrokerUnreachable``; ``WriteError``, ``WriteTimeout``, ``ReadError``, ``ReadTimeout``,
``RemoteProtocolError`` (a reset or a close after sending) may come after Kite received it ->
``BrokerUnavailable``.
"""

from __future__ import annotations

from typing import Any

import httpx

from brokers.adapters.base import (
    BrokerError,
    BrokerInsufficientMargin,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from brokers.families.wire import decode_json, refusal
from brokers.families.wire import transport_error as shared_transport_error

_REFUSALS = {"InputException", "OrderException", "UserException", "HoldingException", "PermissionException"}
_MAYBE_SENT = {"NetworkException", "DataException"}

MAX_MESSAGE = 500


def _message(value: Any, fallback: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_MESSAGE]
    return fallback


def rejection(
    message: str, *, extra: dict[str, Any], order_specific: bool = False, http_status: int = 0
) -> BrokerError:
    """The most precise kind of ``BrokerRejected`` that Kite's message supports (the words every
    family shares, ``brokers.families.wire.refusal``); a 404 on a call naming an order is that order
    not found."""
    if order_specific and http_status == 404:
        return BrokerOrderNotFound(message, extra=extra)
    return refusal(message, extra=extra, order_specific=order_specific)


def unwrap(status_code: int, content_type: str, body: bytes, *, order_specific: bool = False) -> Any:
    """Return the ``data`` of a successful answer, or raise the typed error the answer means.

    ``order_specific``: the call names one order (modify, cancel, history), so a refusal saying the
    order does not exist is ``BrokerOrderNotFound``.
    """
    extra: dict[str, Any] = {"http_status": status_code}
    payload: Any = None
    if "json" in content_type.lower():
        try:
            payload = decode_json(body)
        except (ValueError, RecursionError):
            payload = None
    raw_type = payload.get("error_type") if isinstance(payload, dict) else None
    error_type = raw_type[:100] if isinstance(raw_type, str) else None
    if error_type is not None:
        extra["error_type"] = error_type
    if status_code == 429:
        message = _message(payload.get("message") if isinstance(payload, dict) else None, "Too many requests")
        raise BrokerRateLimited(message, extra=extra)
    if not isinstance(payload, dict):
        raise BrokerUnavailable(
            f"Kite answered HTTP {status_code} with a body that is not its JSON envelope; the outcome is unknown",
            extra=extra,
        )
    if payload.get("status") == "error" or raw_type is not None:
        message = _message(payload.get("message"), f"Kite error (HTTP {status_code})")
        if error_type == "TokenException":
            raise BrokerSessionExpired(message, extra=extra)
        if error_type == "MarginException":
            raise BrokerInsufficientMargin(message, extra=extra)
        if error_type in _REFUSALS:
            raise rejection(message, extra=extra, order_specific=order_specific, http_status=status_code)
        if error_type in _MAYBE_SENT or status_code >= 500:
            raise BrokerUnavailable(message, extra=extra)
        raise rejection(message, extra=extra, order_specific=order_specific, http_status=status_code)
    if status_code >= 300 or payload.get("status") != "success" or "data" not in payload:
        raise BrokerUnavailable(
            f"Kite answered HTTP {status_code} without its success envelope; the outcome is unknown", extra=extra
        )
    return payload["data"]


def transport_error(exc: httpx.HTTPError) -> BrokerError:
    """The typed error for an httpx failure: not sent before the request left, else maybe sent."""
    return shared_transport_error(exc, broker="Kite")


def malformed(what: str) -> BrokerUnavailable:
    return BrokerUnavailable(f"Kite's answer to {what} was not in the documented shape", extra={"malformed": what})
