"""What a broker family brings to the shared contract suite (``test_contract.py``): a kit that starts
the family's local server on loopback and knows the family's exact wire format for the suite's orders.

A family joins the suite by adding its kit to ``KITS`` in ``tests/brokers/contract/kits.py``; the
tests are the same for every family. The server speaks the family's documented format, validates
every request it receives against it (a request it would not accept fails the test with the reason),
and records each request for the tests to compare with the kit's ``expected_*``.

Names the suite uses for a family's calls (``FamilyServer.last(call)``, ``fail_next(call, ...)``):
"login", "place", "modify", "cancel", "orders", "trades", "positions", "holdings", "funds", "quote".
Faults (``fail_next``): "http_500", "timeout" (the answer never comes, after the server processed the
request), "malformed" (200 with a body not in the envelope), "truncated" (200 with half a JSON body),
"rate_limited" (the family's own rate-limit answer), "session_expired" (the family's answer for a
dead session), "rejected" (the family's refusal, with ``REJECT_MESSAGE`` as the broker's message).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn

REJECT_MESSAGE = "RMS:Rule: Check circuit limit including square off order exceeds"
FAULTS = ("http_500", "timeout", "malformed", "truncated", "rate_limited", "session_expired", "rejected")
CALLS = ("login", "place", "modify", "cancel", "orders", "trades", "positions", "holdings", "funds", "quote")


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it: ``call`` is the suite's name for it; ``body`` the
    decoded payload (the JSON object, the form fields, NorenOMS's ``jData`` object), ``raw`` its bytes."""

    call: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    raw: bytes


class FamilyServer(Protocol):
    url: str  # the REST root the broker's "api" endpoint points at
    ws_url: str  # the market-data websocket ("ws")
    requests: list[Recorded]
    # Every websocket subscription message the server has received, decoded (for the reconnect test).
    subscriptions: list[Any]

    def stop(self) -> None: ...

    def endpoints(self) -> dict[str, str]:
        """``settings.BROKER_ENDPOINTS[broker]`` pointing every endpoint of the broker at this server."""
        ...

    def last(self, call: str) -> Recorded: ...

    def fail_next(self, call: str, fault: str) -> None:
        """The next request of ``call`` gets ``fault`` (one of FAULTS)."""
        ...

    def fill(self, broker_order_id: str, price: Decimal) -> None:
        """The exchange fills the open order completely at ``price`` (a trade in the trade book)."""
        ...

    def push_order_update(self, broker_order_id: str) -> tuple[str, bytes, Mapping[str, str]] | None:
        """Report the order's current state as the family reports updates. A family with an order-update
        websocket sends it to every order-stream client and returns None; a family that reports by
        postback returns the postback (the terminal's path, the body, its headers) for the test to POST."""
        ...

    def push_tick(self, token: str, ltp: Decimal) -> None:
        """Send a valid market-data message for ``token`` to every market-data client."""
        ...

    def push_raw(self, message: str | bytes) -> None:
        """Send ``message`` as is to every market-data client."""
        ...

    def drop_streams(self) -> None:
        """Close every websocket connection abruptly (the client must reconnect and resubscribe)."""
        ...


class FamilyKit(Protocol):
    family: str  # the adapter's code, e.g. "noren"
    broker: str  # the registry's broker whose entry the suite runs, e.g. "shoonya"
    client_code: str
    credentials: Mapping[str, str]  # stored (sealed) on the account
    equity_token: str  # the server's token for NSE:RELIANCE (the world's equity, exchange token 2885)
    equity_symbol: str  # the family's trading symbol for it (e.g. "RELIANCE-EQ")
    equity_exchange: str  # the family's exchange or segment for it (e.g. "NSE", "NSE_EQ")
    secrets: tuple[str, ...]  # every secret and token a login and an order carry: never in plaintext
    order_updates: str  # "stream" (an order-update websocket: the adapter's ``order_stream``) or "postback"

    def start_server(self) -> FamilyServer: ...

    def sign_in(self, account: Any, server: FamilyServer) -> SignIn:
        """The family's whole login against the server (TOTP, app key, or the redirect's code)."""
        ...

    def expected_place(self, request: BrokerOrderRequest, server: FamilyServer) -> Any:
        """The exact body the server must receive for ``request`` (compared with ``last("place").body``)."""
        ...

    def expected_modify(self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest) -> Any:
        """The exact body of the modification of the order ``request`` placed."""
        ...

    def valid_frame(self, token: str, ltp: Decimal) -> str | bytes:
        """One market-data message the family's dialect decodes to a tick of ``token`` at ``ltp``."""
        ...

    def master_file(self) -> Mapping[str, bytes]:
        """The server's symbol master (what ``master_rows`` downloads), listing RELIANCE at ``equity_token``."""
        ...


MakeKit = Callable[[], FamilyKit]
