"""Upstox's kit for the shared contract suite (tests/brokers/contract): its local server and the
exact wire format of the suite's orders."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn
from families.upstox.adapter import UpstoxAdapter
from tests.families.upstox import server as up
from tests.families.upstox.server import UpstoxServer, tick_message

PRODUCTS = {"CNC": "D", "MIS": "I", "NRML": "D"}


def master_rows() -> list[dict[str, Any]]:
    """The JSON master the server serves: RELIANCE at the equity key, and a few others."""
    return [
        {
            "segment": "NSE_EQ",
            "name": "RELIANCE INDUSTRIES LTD",
            "exchange": "NSE",
            "isin": "INE002A01018",
            "instrument_type": "EQ",
            "instrument_key": up.EQUITY_KEY,
            "lot_size": 1,
            "freeze_quantity": 100000.0,
            "exchange_token": "2885",
            "tick_size": 10.0,
            "trading_symbol": "RELIANCE",
            "short_name": "Reliance Inds.",
            "security_type": "NORMAL",
        },
        {
            "segment": "NSE_EQ",
            "name": "INFOSYS LIMITED",
            "exchange": "NSE",
            "isin": "INE009A01021",
            "instrument_type": "EQ",
            "instrument_key": "NSE_EQ|INE009A01021",
            "lot_size": 1,
            "exchange_token": "1594",
            "tick_size": 5.0,
            "trading_symbol": "INFY",
        },
        {
            "segment": "NSE_FO",
            "name": "NIFTY",
            "exchange": "NSE",
            "expiry": 1798655399000,
            "instrument_type": "CE",
            "instrument_key": "NSE_FO|48225",
            "lot_size": 75,
            "exchange_token": "48225",
            "tick_size": 5.0,
            "trading_symbol": "NIFTY 24000 CE 31 DEC 26",
            "strike_price": 24000.0,
        },
    ]


class UpstoxKit:
    family = "upstox"
    broker = "upstox"
    client_code = up.USER_ID
    credentials: Mapping[str, str] = {
        "api_key": up.API_KEY,
        "api_secret": up.API_SECRET,
        "redirect_uri": up.REDIRECT_URI,
    }
    equity_token = up.EQUITY_KEY
    equity_symbol = "RELIANCE"
    equity_exchange = "NSE_EQ"
    order_updates = "stream"  # the portfolio stream's order updates (its webhook carries the same messages)
    secrets = (up.API_SECRET, up.ACCESS_TOKEN, up.AUTH_CODE)

    def start_server(self) -> UpstoxServer:
        server = UpstoxServer().start()
        server.set_master(master_rows())
        return server

    def sign_in(self, account: Any, server: UpstoxServer) -> SignIn:
        """The redirect login: Upstox's dialog (the user signs in there), its redirect with the code,
        then the code exchanged for the access token."""
        page = UpstoxAdapter.login_start(account, state="contract-state")
        # The user's browser, not the terminal, opens the dialog: read it without httpx's request log.
        parts = urlsplit(page)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        try:
            connection.request("GET", f"{parts.path}?{parts.query}")
            answer = connection.getresponse()
            location = answer.getheader("Location") or ""
        finally:
            connection.close()
        assert answer.status == 302, answer.status
        params = dict(parse_qsl(urlsplit(location).query))
        assert params["state"] == "contract-state"
        return UpstoxAdapter.login_finish(account, params)

    def expected_place(self, request: BrokerOrderRequest, server: UpstoxServer) -> Any:
        limit = request.order_type in {"LIMIT", "SL"}
        stop = request.order_type in {"SL", "SL-M"}
        return {
            "quantity": request.quantity,
            "product": PRODUCTS[request.product],
            "validity": request.validity,
            "price": float(request.price) if limit and request.price is not None else 0,
            "tag": request.tag,
            "slice": False,
            "instrument_token": self.equity_token,
            "order_type": request.order_type,
            "transaction_type": request.side,
            "disclosed_quantity": 0,
            "trigger_price": float(request.trigger_price) if stop and request.trigger_price is not None else 0,
            "is_amo": False,
        }

    def expected_modify(self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest) -> Any:
        order_type = change.order_type or request.order_type
        price = change.price if change.price is not None else request.price
        trigger = change.trigger_price if change.trigger_price is not None else request.trigger_price
        return {
            "quantity": change.quantity if change.quantity is not None else request.quantity,
            "validity": request.validity,
            "price": float(price) if order_type in {"LIMIT", "SL"} and price is not None else 0,
            "order_id": broker_order_id,
            "order_type": order_type,
            "disclosed_quantity": 0,
            "trigger_price": float(trigger) if order_type in {"SL", "SL-M"} and trigger is not None else 0,
        }

    def valid_frame(self, token: str, ltp: Decimal) -> str | bytes:
        return tick_message(token, ltp)

    def master_file(self) -> Mapping[str, bytes]:
        return {"complete.json.gz": gzip.compress(json.dumps(master_rows()).encode())}
