"""Angel One SmartAPI's kit for the shared broker contract suite (tests/brokers/contract/kit.py).

The expected requests are written here from the documentation (placeOrder and modifyOrder take every
value as a string; a stop-loss order goes as variety STOPLOSS), apart from the adapter's own tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from brokers.adapters import registry
from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn
from tests.families.angel import server as angel
from tests.families.angel import wire

_ORDER_TYPES = {"MARKET": "MARKET", "LIMIT": "LIMIT", "SL": "STOPLOSS_LIMIT", "SL-M": "STOPLOSS_MARKET"}
_PRODUCTS = {"CNC": "DELIVERY", "MIS": "INTRADAY", "NRML": "CARRYFORWARD"}


class AngelKit:
    family = "angel"
    broker = "angelone"
    client_code = angel.CLIENT_CODE
    credentials: Mapping[str, str] = {"api_key": angel.API_KEY, "pin": angel.PIN, "totp_secret": angel.TOTP_SECRET}
    equity_token = "NSE:2885"
    equity_symbol = "RELIANCE-EQ"
    equity_exchange = "NSE"
    secrets = (angel.API_KEY, angel.TOTP_SECRET, angel.JWT, angel.REFRESH, angel.FEED)
    order_updates = "stream"

    def start_server(self) -> angel.AngelServer:
        return angel.AngelServer(hang_seconds=3.0).start()

    def sign_in(self, account: Any, server: Any) -> SignIn:
        return registry.family(account.broker).login_direct(account)

    def expected_place(self, request: BrokerOrderRequest, server: Any) -> Any:
        stop = request.order_type in ("SL", "SL-M")
        priced = request.order_type in ("LIMIT", "SL")
        body = {
            "variety": "AMO" if request.variety == "amo" else ("STOPLOSS" if stop else "NORMAL"),
            "tradingsymbol": self.equity_symbol,
            "symboltoken": "2885",
            "transactiontype": request.side,
            "exchange": "NSE",
            "ordertype": _ORDER_TYPES[request.order_type],
            "producttype": _PRODUCTS[request.product],
            "duration": request.validity,
            "price": f"{request.price:f}" if priced and request.price is not None else "0",
            "squareoff": "0",
            "stoploss": "0",
            "quantity": str(request.quantity),
            "ordertag": request.tag,
        }
        if stop and request.trigger_price is not None:
            body["triggerprice"] = f"{request.trigger_price:f}"
        return body

    def expected_modify(self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest) -> Any:
        order_type = change.order_type or request.order_type
        stop = order_type in ("SL", "SL-M")
        price = change.price if change.price is not None else request.price
        body = {
            "variety": "STOPLOSS" if request.order_type in ("SL", "SL-M") else "NORMAL",
            "orderid": broker_order_id,
            "ordertype": _ORDER_TYPES[order_type],
            "producttype": _PRODUCTS[request.product],
            "duration": request.validity,
            "price": f"{price:f}" if order_type in ("LIMIT", "SL") and price is not None else "0",
            "quantity": str(change.quantity if change.quantity is not None else request.quantity),
            "tradingsymbol": self.equity_symbol,
            "symboltoken": "2885",
            "exchange": "NSE",
        }
        trigger = change.trigger_price if change.trigger_price is not None else request.trigger_price
        if stop and trigger is not None:
            body["triggerprice"] = f"{trigger:f}"
        return body

    def valid_frame(self, token: str, ltp: Decimal) -> str | bytes:
        segment, _, number = token.partition(":")
        kind = {"NSE": 1, "NFO": 2, "BSE": 3, "BFO": 4, "MCX": 5, "NCDEX": 7, "CDS": 13}[segment]
        return wire.encode(wire.Packet(token=number, ltp=ltp, exchange_type=kind), wire.LTP)

    def master_file(self) -> Mapping[str, bytes]:
        import json

        return {"OpenAPIScripMaster.json": json.dumps(angel.MASTER).encode()}
