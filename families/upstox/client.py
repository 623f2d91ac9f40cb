"""Upstox's HTTP API over the shared transport (``brokers.families.wire``): the endpoints, the
envelope reader and the calls the adapter makes.

Every call but the token exchange sends ``Authorization: Bearer <access_token>`` and
``Accept: application/json``; v2 calls also send ``Api-Version: 2.0`` (upstox-python sends it with
every v2 call; Upstox answers UDAPI100015 without it). Bodies are JSON, the token exchange's a form.
Orders go to the HFT host (``hft``: ``/v3/order/place``, ``/v3/order/modify``, ``/v3/order/cancel``),
everything else to the API host (``api``).

The envelope: ``{"status": "success", "data": ...}`` or ``{"status": "error", "errors": [{"errorCode":
"UDAPI...", "message": ...}]}``. The mapping, each error carrying Upstox's message:

- UDAPI100016 (invalid credentials) and UDAPI100073 (inactive client id): the app's credentials
  -> ``BrokerRejected``;
- UDAPI100050 (invalid token), UDAPI100067 (not allowed with an extended token), or another HTTP 401
  -> ``BrokerSessionExpired`` (not sent);
- UDAPI10005 (too many requests) or HTTP 429 -> ``BrokerRateLimited`` (not sent);
- UDAPI100500 (something went wrong) or another error with a 5xx -> ``BrokerUnavailable`` (maybe sent);
- any other error -> ``BrokerRejected``, or its precise kinds by the message (``wire.refusal``);
- a body that is not the envelope -> ``BrokerUnavailable`` (maybe sent).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from brokers import catalogue
from brokers.adapters.base import (
    BrokerError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSessionExpired,
    BrokerUnavailable,
)
from brokers.families.wire import Endpoint, WireClient, decode_json, json_answer, malformed, message_of, refusal
from brokers.rate_limits import RateLimit
from families.upstox import rate_limits

BROKER_NAME = "Upstox"
SESSION_CODES = frozenset({"UDAPI100050", "UDAPI100067"})
# The app's own credentials refused (the token exchange, an inactive client id): a refusal to show, not
# a lapsed session.
CREDENTIAL_CODES = frozenset({"UDAPI100016", "UDAPI100073"})
RATE_LIMIT_CODES = frozenset({"UDAPI10005"})
SERVER_CODES = frozenset({"UDAPI100500"})
V2 = {"Api-Version": "2.0"}


def _limits(broker: str, klass: str) -> tuple[RateLimit, ...]:
    return catalogue.limits(broker, klass, rate_limits.DEFAULTS[klass])


def endpoints(broker: str) -> dict[str, Endpoint]:
    """The calls the adapter makes, with ``broker``'s rate limits."""
    orders, other, quotes = _limits(broker, "orders"), _limits(broker, "other"), _limits(broker, "quotes")
    return {
        "place": Endpoint("POST", "/v3/order/place", orders, write=True),
        "modify": Endpoint("PUT", "/v3/order/modify", orders, write=True),
        "cancel": Endpoint("DELETE", "/v3/order/cancel", orders, write=True),
        "orders": Endpoint("GET", "/v2/order/retrieve-all", other),
        "order_details": Endpoint("GET", "/v2/order/details", other),
        "trades": Endpoint("GET", "/v2/order/trades/get-trades-for-day", other),
        "order_trades": Endpoint("GET", "/v2/order/trades", other),
        "positions": Endpoint("GET", "/v2/portfolio/short-term-positions", other),
        "holdings": Endpoint("GET", "/v2/portfolio/long-term-holdings", other),
        "funds": Endpoint("GET", "/v2/user/get-funds-and-margin", other),
        "quote": Endpoint("GET", "/v2/market-quote/quotes", quotes),
        "token": Endpoint("POST", "/v2/login/authorization/token", other, write=True),
    }


def error_of(status: int, payload: Any, *, order_specific: bool = False) -> BrokerError | None:
    """The typed error an Upstox answer means, or None for one that is not an error envelope."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not (isinstance(payload, dict) and (payload.get("status") == "error" or errors)) and status != 401:
        return None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    raw_code = first.get("errorCode") or first.get("error_code")
    code = raw_code[:40] if isinstance(raw_code, str) else ""
    message = message_of(first.get("message"), f"Upstox error (HTTP {status})")
    extra: dict[str, Any] = {"http_status": status, "error_code": code}
    if code in CREDENTIAL_CODES:
        return BrokerRejected(message, extra=extra)
    if code in SESSION_CODES or status == 401:
        return BrokerSessionExpired(message, extra=extra)
    if code in RATE_LIMIT_CODES or status == 429:
        return BrokerRateLimited(message, extra=extra)
    if code in SERVER_CODES or status >= 500:
        return BrokerUnavailable(message, extra=extra)
    return refusal(message, extra=extra, order_specific=order_specific)


def answer(*, order_specific: bool = False) -> Callable[[int, str, bytes], Any]:
    """The envelope reader: the ``data`` of a success, else the typed error (module docstring)."""

    def read(status: int, content_type: str, body: bytes) -> Any:
        payload = _payload(status, content_type, body)
        error = error_of(status, payload, order_specific=order_specific)
        if error is not None:
            raise error
        if (
            200 <= status < 300
            and isinstance(payload, dict)
            and payload.get("status") in ("success", "partial_success")
            and "data" in payload
        ):
            return payload["data"]
        raise malformed(BROKER_NAME, f"HTTP {status}")

    return read


def _payload(status: int, content_type: str, body: bytes) -> Any:
    """The body as JSON (``wire.json_answer``), with a 429's own error (its code and message) kept."""
    if status == 429:
        try:
            payload = decode_json(body)
        except (ValueError, RecursionError):
            payload = None
        error = error_of(status, payload)
        raise error if error is not None else BrokerRateLimited("Upstox: too many requests", extra={"http_status": 429})
    return json_answer(status, content_type, body, broker=BROKER_NAME)


def token_answer(status: int, content_type: str, body: bytes) -> Any:
    """The token exchange answers with the token itself (no envelope) or the error envelope."""
    payload = _payload(status, content_type, body)
    error = error_of(status, payload)
    if error is not None:
        raise error
    if 200 <= status < 300 and isinstance(payload, dict):
        return payload
    raise malformed(BROKER_NAME, "the token exchange")


def dumps(body: Mapping[str, Any]) -> bytes:
    """A request body as Upstox reads it (numbers as JSON numbers)."""
    return json.dumps(body, separators=(",", ":")).encode()


class UpstoxClient:
    """One account's calls to Upstox (``broker`` names the registry's entry: hosts and limits)."""

    def __init__(self, *, broker: str, access_token: str, limit_key: str, http: Any = None) -> None:
        self.broker = broker
        self.endpoints = endpoints(broker)
        self._token = access_token

        def headers() -> dict[str, str]:
            return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

        def client(root: str, *, order_specific: bool = False) -> WireClient:
            return WireClient(
                broker=BROKER_NAME,
                root=root,
                answer=answer(order_specific=order_specific),
                limit_key=limit_key,
                headers=headers,
                http=http,
            )

        api, hft = catalogue.endpoint(broker, "api"), catalogue.endpoint(broker, "hft")
        self.api, self.hft = client(api), client(hft)
        self.api_order, self.hft_order = client(api, order_specific=True), client(hft, order_specific=True)

    def __repr__(self) -> str:  # never the token
        return f"UpstoxClient({self.broker!r})"

    # --- writes (never retried) -------------------------------------------------------------------
    def place(self, body: Mapping[str, Any]) -> Any:
        return self.hft.call(self.endpoints["place"], content=dumps(body), headers=_JSON)

    def modify(self, body: Mapping[str, Any]) -> Any:
        return self.hft_order.call(self.endpoints["modify"], content=dumps(body), headers=_JSON)

    def cancel(self, order_id: str) -> Any:
        return self.hft_order.call(self.endpoints["cancel"], params={"order_id": order_id})

    # --- reads ------------------------------------------------------------------------------------
    def get(self, name: str, params: Mapping[str, str] | None = None, *, order_specific: bool = False) -> Any:
        client = self.api_order if order_specific else self.api
        return client.call(self.endpoints[name], params=params, headers=V2)

    def parse(self, what: str, parse: Callable[[Any], Any], data: Any) -> Any:
        return self.api.parse(what, parse, data)


_JSON = {"Content-Type": "application/json"}
