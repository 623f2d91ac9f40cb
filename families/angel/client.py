"""Angel One SmartAPI's REST calls over the shared transport (``brokers.families.wire.WireClient``).

Every call carries the SDK's headers (``X-PrivateKey`` the API key, ``X-UserType: USER``,
``X-SourceID: WEB``, the client's local and public IP and MAC address, JSON ``Accept`` and
``Content-Type``) and, once signed in, ``Authorization: Bearer <jwtToken>``. Writes and the quote are
POSTs of a JSON object; the books are GETs without a body. Angel answers in one envelope,
``{"status": true|false, "message", "errorcode", "data"}``, mostly with HTTP 200 whatever happened;
its gateway refuses a bad or expired token with ``{"success": false, "message", "errorCode"}`` and a
request over its rate limit with the plain text "Access denied because of exceeding access rate".
``answer`` turns each of those into the data or the typed error (see ``error_for``).
"""

from __future__ import annotations

import functools
import re
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from brokers import catalogue
from brokers.adapters.base import (
    BrokerError,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from brokers.families.wire import Endpoint, WireClient, json_answer, malformed, message_of, refusal
from brokers.rate_limits import RateLimiter
from families.angel.mapping import FAMILY
from families.angel.rate_limits import LIMITS

BROKER_NAME = "Angel One"
LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
ORDER = "/rest/secure/angelbroking/order/v1"

# Angel's error codes that mean the session is gone (invalid, expired or missing token; the OMS
# session expired; the client is not logged in; a bad or expired refresh token): sign in again.
SESSION_CODES = frozenset({"AG8001", "AG8002", "AG8003", "AB1010", "AB1011", "AB8050", "AB8051"})
# "Something went wrong, please try after sometime" and "Internal error": Angel could not say what
# became of the request, so a write's outcome is unknown.
UNKNOWN_OUTCOME_CODES = frozenset({"AB1004", "AB2001"})
# Angel's order-specific codes: no such order (modify, cancel).
ORDER_NOT_FOUND_CODES = frozenset({"AB1013"})
_RATE_TEXT = re.compile(r"exceeding access rate|too many requests", re.I)


def _endpoint(method: str, path: str, klass: str, *, write: bool = False) -> tuple[str, str, str, bool]:
    return method, path, klass, write


# call name -> (method, path, rate-limit class, write)
CALLS: dict[str, tuple[str, str, str, bool]] = {
    "login": _endpoint("POST", LOGIN_PATH, "login"),
    "place": _endpoint("POST", f"{ORDER}/placeOrder", "orders", write=True),
    "modify": _endpoint("POST", f"{ORDER}/modifyOrder", "order_modify", write=True),
    "cancel": _endpoint("POST", f"{ORDER}/cancelOrder", "order_cancel", write=True),
    "orders": _endpoint("GET", f"{ORDER}/getOrderBook", "order_book"),
    "trades": _endpoint("GET", f"{ORDER}/getTradeBook", "trade_book"),
    "positions": _endpoint("GET", f"{ORDER}/getPosition", "positions"),
    "holdings": _endpoint("GET", "/rest/secure/angelbroking/portfolio/v1/getHolding", "holdings"),
    "funds": _endpoint("GET", "/rest/secure/angelbroking/user/v1/getRMS", "funds"),
    "quote": _endpoint("POST", "/rest/secure/angelbroking/market/v1/quote", "quotes"),
}


@functools.cache
def client_identity() -> tuple[str, str, str]:
    """(local IP, public IP, MAC address) as the SDK sends them in ``X-ClientLocalIP``,
    ``X-ClientPublicIP`` and ``X-MACAddress``. The public IP is ``settings.ANGEL_CLIENT_PUBLIC_IP``
    (the static IP registered with Angel for orders) where set, else the local one."""
    try:
        local = socket.gethostbyname(socket.gethostname())
    except OSError:
        local = "127.0.0.1"
    public = settings.ANGEL_CLIENT_PUBLIC_IP or local
    node = uuid.getnode()
    mac = ":".join(f"{(node >> shift) & 0xFF:02x}" for shift in range(40, -1, -8))
    return local, public, mac


def base_headers(api_key: str) -> dict[str, str]:
    local, public, mac = client_identity()
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-UserType": "USER",
        "X-SourceID": "WEB",
        "X-ClientLocalIP": local,
        "X-ClientPublicIP": public,
        "X-MACAddress": mac,
        "X-PrivateKey": api_key,
    }


def error_for(payload: Mapping[str, Any], *, call: str, http_status: int) -> BrokerError:
    """The typed error an Angel failure envelope means, with Angel's message and error code."""
    code = str(payload.get("errorcode") or payload.get("errorCode") or "").strip()[:20]
    message = message_of(payload.get("message"), f"{BROKER_NAME} refused the request ({code or 'no code'})")
    extra: dict[str, Any] = {"errorcode": code, "http_status": http_status}
    if call == "login":
        # A refused sign-in (wrong PIN or TOTP, blocked client...): nothing else to say.
        return refusal(message, extra=extra)
    if code in SESSION_CODES or (http_status in (401, 403) and "token" in message.lower()):
        return BrokerSessionExpired(f"{BROKER_NAME}: {message}; sign in again. Nothing was sent.", extra=extra)
    if code in UNKNOWN_OUTCOME_CODES or http_status >= 500:
        return BrokerUnavailable(f"{BROKER_NAME}: {message}; the outcome is unknown", extra=extra)
    order_specific = call in ("modify", "cancel")
    if order_specific and code in ORDER_NOT_FOUND_CODES:
        return BrokerOrderNotFound(message, extra=extra)
    return refusal(message, extra=extra, order_specific=order_specific)


def read_answer(call: str, status: int, content_type: str, body: bytes) -> Any:
    """Angel's answer to ``call``: the envelope's ``data``, or the typed error (module docstring)."""
    if status in (403, 429) or (status >= 400 and not body.lstrip().startswith(b"{")):
        text = body[:300].decode("utf-8", "replace")
        if status == 429 or _RATE_TEXT.search(text):
            raise BrokerRateLimited(
                f"{BROKER_NAME}: {message_of(text, 'too many requests')}", extra={"http_status": status}
            )
    payload = json_answer(status, content_type, body, broker=BROKER_NAME)
    if not isinstance(payload, dict):
        raise malformed(BROKER_NAME, call)
    ok = payload.get("status", payload.get("success"))
    if ok is True or (isinstance(ok, str) and ok.lower() == "true"):
        if status >= 400:
            raise malformed(BROKER_NAME, call)
        return payload.get("data")
    if ok is False or (isinstance(ok, str) and ok.lower() == "false"):
        raise error_for(payload, call=call, http_status=status)
    if status >= 500:
        raise BrokerUnavailable(
            f"{BROKER_NAME} answered HTTP {status}; the outcome is unknown", extra={"http_status": status}
        )
    raise malformed(BROKER_NAME, call)


class AngelClient:
    """One account's (or one sign-in's) calls to an Angel One broker's SmartAPI root."""

    def __init__(
        self,
        *,
        broker: str,
        api_key: str,
        jwt_token: str | None = None,
        limit_key: str,
        root: str | None = None,
        limiter: RateLimiter | None = None,
        http: Any = None,
    ) -> None:
        self.broker, self.api_key, self.jwt_token = broker, api_key, jwt_token
        self._endpoints = {
            name: Endpoint(method, path, catalogue.limits(broker, klass, LIMITS[klass]), write=write)
            for name, (method, path, klass, write) in CALLS.items()
        }
        self._wires: dict[str, WireClient] = {}
        self._root = root or catalogue.endpoint(broker, "api")
        self._limit_key, self._limiter, self._http = limit_key, limiter, http

    def __repr__(self) -> str:  # never the token
        return f"AngelClient({self.broker!r})"

    def _headers(self) -> dict[str, str]:
        headers = base_headers(self.api_key)
        if self.jwt_token:
            headers["Authorization"] = f"Bearer {self.jwt_token}"
        return headers

    def _wire(self, call: str) -> WireClient:
        wire = self._wires.get(call)
        if wire is None:
            wire = self._wires[call] = WireClient(
                broker=BROKER_NAME,
                root=self._root,
                answer=functools.partial(read_answer, call),
                limit_key=self._limit_key,
                headers=self._headers,
                limiter=self._limiter,
                http=self._http,
            )
        return wire

    def call(self, call: str, body: Mapping[str, Any] | None = None) -> Any:
        """Send ``call`` (one of ``CALLS``) with ``body`` (POSTs) and return the envelope's data."""
        return self._wire(call).call(self._endpoints[call], json_body=dict(body) if body is not None else None)

    def parse(self, call: str, parse: Any, data: Any) -> Any:
        """``parse(data)``, a shape error being Angel's malformed answer (maybe sent)."""
        return self._wire(call).parse(call, parse, data)


__all__ = ["CALLS", "FAMILY", "AngelClient", "base_headers", "client_identity", "read_answer"]
