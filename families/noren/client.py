"""The NorenOMS HTTP client: every call a POST to ``<root>/<Route>`` whose body is
``jData=<json>&jKey=<session token>`` (QuickAuth alone has no ``jKey``), all values strings
(NorenApi.py, ShoonyaApi-py README). The JSON is sent as the SDK sends it, with the three characters a
form decoder would read otherwise (``%``, ``&``, ``+``) percent-encoded: the SDK encodes the trading
symbol that way (``quote_plus``) so that "M&M-EQ" survives, and the other values we send never hold them.

Calls count against the broker's rate limits (``LIMITS``: every call in "other", orders also in
"orders"; the registry's figures win, ``brokers.catalogue.limits``) and answers go through
``families.noren.errors.answer``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from brokers import catalogue
from brokers.adapters.base import BrokerUnavailable
from brokers.families.wire import Endpoint, WireClient, malformed
from brokers.rate_limits import RateLimit
from families.noren.errors import BROKER, NotOk, answer

# Finvasia's published limits for Shoonya (ShoonyaApi-py issues 30 and 146, maintainers' answers):
# 20 requests a second and 200 a minute. Orders are held to 10 a second, the rate above which SEBI's
# 2025 retail-algo framework wants an order stream registered.
LIMITS: dict[str, tuple[RateLimit, ...]] = {
    "orders": (RateLimit("orders_0", 10, 1.0),),
    "other": (RateLimit("other_0", 20, 1.0), RateLimit("other_1", 200, 60.0)),
}
ROUTES = (
    "QuickAuth",
    "PlaceOrder",
    "ModifyOrder",
    "CancelOrder",
    "OrderBook",
    "SingleOrdHist",
    "TradeBook",
    "PositionBook",
    "Holdings",
    "Limits",
    "GetQuotes",
)
WRITES = frozenset({"QuickAuth", "PlaceOrder", "ModifyOrder", "CancelOrder"})
ORDER_ROUTES = frozenset({"PlaceOrder", "ModifyOrder", "CancelOrder"})


def jdata(values: Mapping[str, str]) -> str:
    """The JSON of a ``jData`` field as it goes on the wire (see the module docstring)."""
    text = json.dumps(dict(values), separators=(", ", ": "))
    return text.replace("%", "%25").replace("&", "%26").replace("+", "%2B")


def body(values: Mapping[str, str], token: str | None) -> str:
    """A request's whole body: ``jData=<json>`` and, for a signed-in call, ``&jKey=<token>``."""
    out = "jData=" + jdata(values)
    return out + f"&jKey={token}" if token is not None else out


def limits_for(broker: str) -> dict[str, tuple[RateLimit, ...]]:
    """The broker's limits per class: the registry's where it gives them, else the family's."""
    try:
        return {klass: catalogue.limits(broker, klass, default) for klass, default in LIMITS.items()}
    except catalogue.UnknownBrokerEntry:
        return dict(LIMITS)


class NorenClient:
    """One account's calls to one NorenOMS API root (``root`` ends at ``.../NorenWClientTP``).

    ``token`` is the session's ``susertoken`` (None before sign-in); ``broker`` names the registry's
    broker whose limits apply."""

    def __init__(
        self,
        *,
        broker: str,
        root: str,
        token: str | None,
        limit_key: str,
        wire: WireClient | None = None,
    ) -> None:
        self.broker, self._token = broker, token
        self.wire = wire or WireClient(broker=broker, root=root, answer=answer, limit_key=limit_key)
        limits = limits_for(broker)
        self._endpoints = {
            route: Endpoint(
                "POST",
                "/" + route,
                limits=(limits["orders"] + limits["other"]) if route in ORDER_ROUTES else limits["other"],
                write=route in WRITES,
            )
            for route in ROUTES
        }

    def __repr__(self) -> str:  # never the token
        return f"NorenClient({self.broker!r}, signed_in={self._token is not None})"

    def call(self, route: str, values: Mapping[str, str], *, order_specific: bool = False) -> Any:
        """POST ``values`` to ``route``; return the ``Ok`` object or the book (an array; an empty
        list for a book Noren says has "no data"). Raises the typed errors of ``errors.answer``, and
        the refusal a ``Not_Ok`` means."""
        endpoint = self._endpoints[route]
        token = None if route == "QuickAuth" else self._token
        data = self.wire.call(endpoint, content=body(values, token))
        if isinstance(data, NotOk):
            if data.no_data and route not in WRITES:
                return []
            raise data.error(order_specific=order_specific)
        return data

    def book(self, route: str, values: Mapping[str, str], *, order_specific: bool = False) -> list[dict[str, Any]]:
        """A book's rows (objects); a book that is not an array of objects is malformed (maybe sent)."""
        data = self.call(route, values, order_specific=order_specific)
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise malformed(BROKER, f"the {route} answer")
        return data

    def obj(self, route: str, values: Mapping[str, str], *, order_specific: bool = False) -> dict[str, Any]:
        data = self.call(route, values, order_specific=order_specific)
        if not isinstance(data, dict):
            raise malformed(BROKER, f"the {route} answer")
        return data

    def parse(self, what: str, parse: Any, data: Any) -> Any:
        """``parse(data)``, any shape error being ``BrokerUnavailable`` (the answer was not as documented)."""
        return self.wire.parse(what, parse, data)


def require_text(data: Mapping[str, Any], key: str, what: str) -> str:
    """A non-empty string field of an ``Ok`` answer; raises BrokerUnavailable when it is missing."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise BrokerUnavailable(f"{BROKER}'s answer to {what} has no {key}; the outcome is unknown")
    return value.strip()
