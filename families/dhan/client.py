"""DhanHQ v2's REST API for one account, over the shared transport (``brokers.families.wire``).

Every call carries the headers ``access-token`` (the day's JWT) and ``client-id`` (the Dhan client
id), and JSON bodies carry ``dhanClientId`` as DhanHQ-py's dhan_http.py adds it. Prices go as JSON
numbers. The calls and their rate-limit classes (https://dhanhq.co/docs/v2, "Rate limit"):

- orders (place ``POST /orders``, modify ``PUT /orders/{id}``, cancel ``DELETE /orders/{id}``):
  25/s, 250/min, 1,000/h, 7,000/day, shared by all three;
- quotes (``POST /marketfeed/quote``): 1/s;
- other, non-trading reads (``GET /orders``, ``/orders/external/{tag}``, ``/trades``,
  ``/trades/{id}``, ``/positions``, ``/holdings``, ``/fundlimit``, ``/profile``): 20/s.

A broker entry's own ``limits`` (``brokers/data/brokers.toml``) win over these defaults. The day's cap
is counted in a sliding 24 h window, stricter than Dhan's calendar day.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from brokers import catalogue
from brokers.families.wire import Endpoint, WireClient
from brokers.rate_limits import RateLimit, RateLimiter
from families.dhan.errors import answer, order_answer

ORDER_LIMITS = (
    RateLimit("orders", 25, 1.0),
    RateLimit("orders_minute", 250, 60.0),
    RateLimit("orders_hour", 1000, 3600.0),
    RateLimit("orders_day", 7000, 86_400.0),
)
QUOTE_LIMITS = (RateLimit("quotes", 1, 1.0),)
DATA_LIMITS = (RateLimit("data", 5, 1.0), RateLimit("data_day", 100_000, 86_400.0))
OTHER_LIMITS = (RateLimit("other", 20, 1.0),)
DEFAULT_LIMITS: dict[str, tuple[RateLimit, ...]] = {
    "orders": ORDER_LIMITS,
    "quotes": QUOTE_LIMITS,
    "data": DATA_LIMITS,
    "other": OTHER_LIMITS,
}
MAX_MODIFICATIONS = 25  # per order (Dhan's documented cap)


def limits_for(broker: str, klass: str) -> tuple[RateLimit, ...]:
    """Broker ``broker``'s limits of a class: its registry entry's, else Dhan's documented defaults."""
    try:
        return catalogue.limits(broker, klass, DEFAULT_LIMITS[klass])
    except catalogue.UnknownBrokerEntry:
        return DEFAULT_LIMITS[klass]


def dumps(body: Mapping[str, Any]) -> bytes:
    """A request body as Dhan reads it: prices (Decimals) as JSON numbers."""
    return json.dumps(body, default=_number, separators=(",", ":")).encode()


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # a tick-sized price: the shortest float repr is its decimal text
    raise TypeError(f"{type(value).__name__} is not JSON")


class DhanClient:
    """One account's calls to Dhan's API root (``catalogue.endpoint(broker, "api")``)."""

    def __init__(
        self,
        *,
        broker: str,
        client_id: str,
        access_token: str,
        root: str,
        limit_key: str,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.broker, self.client_id = broker, client_id
        self._token = access_token

        def wire(read: Callable[[int, str, bytes], Any]) -> WireClient:
            return WireClient(
                broker="Dhan", root=root, answer=read, limit_key=limit_key, headers=self._headers, limiter=limiter
            )

        self._wire, self._order_wire = wire(answer), wire(order_answer)
        limits = {klass: limits_for(broker, klass) for klass in DEFAULT_LIMITS}
        self.place_ep = Endpoint("POST", "/orders", limits["orders"], write=True)
        self.modify_ep = Endpoint("PUT", "/orders/{order_id}", limits["orders"], write=True)
        self.cancel_ep = Endpoint("DELETE", "/orders/{order_id}", limits["orders"], write=True)
        self.orders_ep = Endpoint("GET", "/orders", limits["other"])
        self.order_by_tag_ep = Endpoint("GET", "/orders/external/{tag}", limits["other"])
        self.trades_ep = Endpoint("GET", "/trades", limits["other"])
        self.order_trades_ep = Endpoint("GET", "/trades/{order_id}", limits["other"])
        self.positions_ep = Endpoint("GET", "/positions", limits["other"])
        self.holdings_ep = Endpoint("GET", "/holdings", limits["other"])
        self.funds_ep = Endpoint("GET", "/fundlimit", limits["other"])
        self.profile_ep = Endpoint("GET", "/profile", limits["other"])
        self.quote_ep = Endpoint("POST", "/marketfeed/quote", limits["quotes"])

    def __repr__(self) -> str:  # never the token
        return f"DhanClient({self.broker!r}, {self.client_id!r})"

    def _headers(self) -> dict[str, str]:
        return {"access-token": self._token, "client-id": self.client_id, "Accept": "application/json"}

    def _json(self, wire: WireClient, endpoint: Endpoint, body: Mapping[str, Any], **path: str) -> Any:
        return wire.call(
            endpoint,
            path=path,
            content=dumps({"dhanClientId": self.client_id, **body}),
            headers={"Content-Type": "application/json"},
        )

    # --- writes ------------------------------------------------------------------------------------
    def place_order(self, body: Mapping[str, Any]) -> Any:
        return self._json(self._wire, self.place_ep, body)

    def modify_order(self, order_id: str, body: Mapping[str, Any]) -> Any:
        return self._json(self._order_wire, self.modify_ep, body, order_id=order_id)

    def cancel_order(self, order_id: str) -> Any:
        return self._order_wire.call(self.cancel_ep, path={"order_id": order_id})

    # --- reads ---------------------------------------------------------------------------------------
    def orders(self) -> Any:
        return self._wire.call(self.orders_ep)

    def order_by_tag(self, tag: str) -> Any:
        return self._order_wire.call(self.order_by_tag_ep, path={"tag": tag})

    def trades(self) -> Any:
        return self._wire.call(self.trades_ep)

    def order_trades(self, order_id: str) -> Any:
        return self._order_wire.call(self.order_trades_ep, path={"order_id": order_id})

    def positions(self) -> Any:
        return self._wire.call(self.positions_ep)

    def holdings(self) -> Any:
        return self._wire.call(self.holdings_ep)

    def funds(self) -> Any:
        return self._wire.call(self.funds_ep)

    def profile(self) -> Any:
        return self._wire.call(self.profile_ep)

    def quote(self, securities: Mapping[str, list[int]]) -> Any:
        return self._json(self._wire, self.quote_ep, securities)

    def parse(self, what: str, parse: Callable[[Any], Any], data: Any) -> Any:
        return self._wire.parse(what, parse, data)


class DhanAuth:
    """Dhan's token host (``catalogue.endpoint(broker, "auth")``): an access token from the client
    id, the account's PIN and a TOTP (``POST /app/generateAccessToken?dhanClientId=&pin=&totp=``,
    DhanHQ-py auth.py ``generate_token``). Answered with ``{dhanClientId, dhanClientName, dhanClientUcc,
    givenPowerOfAttorney, accessToken, expiryTime}`` (expiryTime: ISO, IST)."""

    ENDPOINT = Endpoint("POST", "/app/generateAccessToken", OTHER_LIMITS, write=True)

    def __init__(self, *, root: str, limit_key: str, limiter: RateLimiter | None = None) -> None:
        self._wire = WireClient(broker="Dhan", root=root, answer=answer, limit_key=limit_key, limiter=limiter)

    def generate_token(self, *, client_id: str, pin: str, totp: str) -> Any:
        return self._wire.call(self.ENDPOINT, params={"dhanClientId": client_id, "pin": pin, "totp": totp})
