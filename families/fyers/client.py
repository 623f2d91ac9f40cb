"""Fyers API v3 over HTTP: one account's calls (or one sign-in's) on ``brokers.families.wire.WireClient``.

Every request carries ``Authorization: <app_id>:<access_token>`` (no scheme) and ``version: 3``, as
the fyers-apiv3 SDK sends them (fyersModel.py, ``FyersServiceSync``); bodies are JSON, the cancel's
too (``DELETE /orders/sync`` with ``{"id": ...}``). Trading calls live under the API root
(``https://api-t1.fyers.in/api/v3``, the registry's "api"), quotes under the data root
(``https://api-t1.fyers.in/data``, "data"). Prices are sent as JSON numbers written from the Decimal
(never through a float's rounding); answers are read with every price as a Decimal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from brokers import catalogue
from brokers.families.wire import Endpoint, WireClient
from brokers.rate_limits import RateLimit, RateLimiter
from families.fyers import errors
from families.fyers.rate_limits import LIMITS

FAMILY = "fyers"
JSON = {"Content-Type": "application/json"}


def _endpoint(broker: str, method: str, path: str, klass: str, *, write: bool = False) -> Endpoint:
    limits: tuple[RateLimit, ...] = catalogue.limits(broker, klass, LIMITS[klass])
    return Endpoint(method, path, limits, write=write)


def dumps(body: Any) -> bytes:
    """JSON with each Decimal written as the number it is (``985.50`` -> ``985.5``, ``990`` -> ``990``),
    never through a float."""
    return _json(body).encode()


def _json(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a price must be a finite number")
        text = format(value.normalize(), "f")
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(key))}:{_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(item) for item in value) + "]"
    return json.dumps(value)


class FyersClient:
    """One account's Fyers API: ``app_id`` (the app's client id, "XXXXXX-100") and its day's
    ``access_token`` (None before sign-in). Every method returns the answer's object (the envelope
    with its data key) or raises the typed errors of ``families.fyers.errors``."""

    def __init__(
        self,
        broker: str,
        app_id: str,
        access_token: str | None = None,
        *,
        limit_key: str,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.broker, self.app_id, self._token = broker, app_id, access_token
        self._api = WireClient(
            broker=FAMILY,
            root=catalogue.endpoint(broker, "api"),
            answer=errors.answer,
            limit_key=limit_key,
            headers=self._headers,
            limiter=limiter,
        )
        self._limiter, self._limit_key = limiter, limit_key
        self._e = {
            "token": _endpoint(broker, "POST", "/validate-authcode", "other", write=True),
            "place": _endpoint(broker, "POST", "/orders/sync", "orders", write=True),
            "modify": _endpoint(broker, "PATCH", "/orders/sync", "orders", write=True),
            "cancel": _endpoint(broker, "DELETE", "/orders/sync", "orders", write=True),
            "orders": _endpoint(broker, "GET", "/orders", "other"),
            "trades": _endpoint(broker, "GET", "/tradebook", "other"),
            "positions": _endpoint(broker, "GET", "/positions", "other"),
            "holdings": _endpoint(broker, "GET", "/holdings", "other"),
            "funds": _endpoint(broker, "GET", "/funds", "other"),
            "quotes": _endpoint(broker, "GET", "/quotes", "quotes"),
        }

    def __repr__(self) -> str:  # never the token
        return f"FyersClient({self.broker!r})"

    def _headers(self) -> Mapping[str, str]:
        headers = {"version": "3"}
        if self._token:
            headers["Authorization"] = f"{self.app_id}:{self._token}"
        return headers

    def _data(self) -> WireClient:
        return WireClient(
            broker=FAMILY,
            root=catalogue.endpoint(self.broker, "data"),
            answer=errors.answer,
            limit_key=self._limit_key,
            headers=self._headers,
            limiter=self._limiter,
        )

    def _send(self, name: str, body: Any, *, answer: Callable[..., Any] | None = None) -> dict[str, Any]:
        if answer is not None:
            client = WireClient(
                broker=FAMILY,
                root=self._api.root,
                answer=answer,
                limit_key=self._limit_key,
                headers=self._headers,
                limiter=self._limiter,
            )
            return client.call(self._e[name], content=dumps(body), headers=JSON)
        return self._api.call(self._e[name], content=dumps(body), headers=JSON)

    # --- the sign-in ------------------------------------------------------------------------------
    def validate_authcode(self, *, auth_code: str, app_id_hash: str) -> dict[str, Any]:
        """Exchange the redirect's auth code for the day's tokens (``access_token``, ``refresh_token``)."""
        body = {"grant_type": "authorization_code", "appIdHash": app_id_hash, "code": auth_code}
        return self._send("token", body)

    # --- orders -----------------------------------------------------------------------------------
    def place_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send("place", dict(body))

    def modify_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send("modify", dict(body), answer=partial(errors.answer, order_specific=True))

    def cancel_order(self, order_id: str) -> dict[str, Any]:
        return self._send("cancel", {"id": order_id}, answer=partial(errors.answer, order_specific=True))

    # --- reads ------------------------------------------------------------------------------------
    def orders(self) -> dict[str, Any]:
        return self._api.call(self._e["orders"])

    def trades(self) -> dict[str, Any]:
        return self._api.call(self._e["trades"])

    def positions(self) -> dict[str, Any]:
        return self._api.call(self._e["positions"])

    def holdings(self) -> dict[str, Any]:
        return self._api.call(self._e["holdings"])

    def funds(self) -> dict[str, Any]:
        return self._api.call(self._e["funds"])

    def quotes(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Quotes of up to 50 symbol tickers ("NSE:SBIN-EQ"), comma-separated as the SDK sends them."""
        return self._data().call(self._e["quotes"], params={"symbols": ",".join(symbols)})

    def parse(self, what: str, parse: Callable[[Any], Any], data: Any) -> Any:
        """``parse(data)``, a shape error being ``BrokerUnavailable`` (maybe sent)."""
        return self._api.parse(what, parse, data)
