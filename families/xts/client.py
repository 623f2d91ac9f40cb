"""The XTS REST API over the families' shared transport (``brokers.families.wire``): the two sign-ins,
orders, the books, the balance, quotes, market-data subscriptions and the instrument master.

XTS has two products with separate app keys and sessions on one host: Interactive
(``/interactive/...``: orders and the account) and Market Data (``/apimarketdata/...``). Every call
sends its session's token as ``authorization: <token>`` (no scheme) and a JSON body; GET and DELETE
carry their parameters in the query (symphonyfintech/xts-pythonclient-api-sdk, Connect.py
``_request``). A dealer login (``isInvestorClient`` false) names the client in ``clientID`` on every
Interactive call; an investor's login does not.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from brokers import catalogue
from brokers.families.wire import Endpoint, WireClient
from brokers.rate_limits import RateLimiter
from families.xts import rate_limits
from families.xts.errors import answer

SOURCE = "WEBAPI"  # the "source" every XTS sign-in names (the SDK's config.ini)


@dataclass(frozen=True, slots=True)
class Endpoints:
    login: Endpoint
    md_login: Endpoint
    place: Endpoint
    modify: Endpoint
    cancel: Endpoint
    orders: Endpoint
    trades: Endpoint
    positions: Endpoint
    holdings: Endpoint
    balance: Endpoint
    quotes: Endpoint
    subscribe: Endpoint
    master: Endpoint


@functools.cache
def endpoints(broker: str) -> Endpoints:
    """Broker ``broker``'s XTS calls with its rate limits (the registry's, else the family's defaults)."""

    def limits(klass: str):
        return catalogue.limits(broker, klass, rate_limits.DEFAULTS[klass])

    orders, other, quotes, login = limits("orders"), limits("other"), limits("quotes"), limits("login")
    return Endpoints(
        login=Endpoint("POST", "/interactive/user/session", login),
        md_login=Endpoint("POST", "/apimarketdata/auth/login", login),
        place=Endpoint("POST", "/interactive/orders", orders, write=True),
        modify=Endpoint("PUT", "/interactive/orders", orders, write=True),
        cancel=Endpoint("DELETE", "/interactive/orders", orders, write=True),
        orders=Endpoint("GET", "/interactive/orders", other),
        trades=Endpoint("GET", "/interactive/orders/trades", other),
        positions=Endpoint("GET", "/interactive/portfolio/positions", other),
        holdings=Endpoint("GET", "/interactive/portfolio/holdings", other),
        balance=Endpoint("GET", "/interactive/user/balance", other),
        quotes=Endpoint("POST", "/apimarketdata/instruments/quotes", quotes),
        subscribe=Endpoint("POST", "/apimarketdata/instruments/subscription", other),
        master=Endpoint("POST", "/apimarketdata/instruments/master", other),
    )


def _json(body: Any) -> bytes:
    # Prices go as JSON numbers: Decimal through its shortest float form (a tick-size multiple, exact).
    return json.dumps(body, default=_number, separators=(",", ":")).encode()


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class XtsSession:
    """One XTS product's calls with one token (or none, to sign in)."""

    def __init__(
        self,
        *,
        broker: str,
        root: str,
        token: str = "",
        limit_key: str,
        limiter: RateLimiter | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.broker = broker
        self._token = token
        # Two transports over one pool: a call that names one order reads "no such order" as
        # BrokerOrderNotFound, any other as a plain refusal.
        self.wire, self.wire_order = (
            WireClient(
                broker=broker,
                root=root,
                answer=functools.partial(answer, broker=broker, order_specific=order_specific),
                limit_key=limit_key,
                headers=self._headers,
                limiter=limiter,
                http=http,
            )
            for order_specific in (False, True)
        )

    def __repr__(self) -> str:  # never the token
        return f"XtsSession({self.broker!r})"

    def _headers(self) -> Mapping[str, str]:
        headers = {"content-type": "application/json"}
        if self._token:
            headers["authorization"] = self._token
        return headers

    def call(
        self,
        endpoint: Endpoint,
        *,
        body: Any = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        order_specific: bool = False,
    ) -> Any:
        """Send one call; return its ``result``. Raises the typed errors of ``families.xts.errors``
        and ``brokers.families.wire``."""
        wire = self.wire_order if order_specific else self.wire
        return wire.call(endpoint, params=params, content=_json(body) if body is not None else None)


def sign_in(session: XtsSession, endpoint: Endpoint, *, app_key: str, secret_key: str) -> dict[str, Any]:
    """POST ``{appKey, secretKey, source}`` to a sign-in endpoint; return XTS's ``result`` (``token``,
    ``userID``, ``isInvestorClient``...). Raises BrokerError; BrokerUnavailable when it has no token."""
    result = session.call(endpoint, body={"appKey": app_key, "secretKey": secret_key, "source": SOURCE})
    return session.wire.parse("the sign-in", _login_result, result)


def _login_result(result: Any) -> dict[str, Any]:
    token, user = result["token"], result["userID"]
    if not isinstance(token, str) or not token or not isinstance(user, str | int) or not str(user):
        raise ValueError("the sign-in answered no token")
    return dict(result)
