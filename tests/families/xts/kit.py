"""The XTS family's kit for the shared broker contract suite (tests/brokers/contract/kit.py), run
against the local XTS server of ``server.py`` as the registry's broker "iifl"."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn
from families.xts.adapter import XtsAdapter
from tests.families.xts import server as xs

ORDER_TYPES = {"MARKET": "MARKET", "LIMIT": "LIMIT", "SL": "STOPLIMIT", "SL-M": "STOPMARKET"}


class XtsKit:
    family = "xts"
    broker = "iifl"
    client_code = xs.USER_ID
    credentials: Mapping[str, str] = {
        "app_key": xs.APP_KEY,
        "secret_key": xs.SECRET_KEY,
        "md_app_key": xs.MD_APP_KEY,
        "md_secret_key": xs.MD_SECRET_KEY,
    }
    equity_token = "1_2885"  # NSECM (segment 1), exchange instrument id 2885
    equity_symbol = "RELIANCE-EQ"
    equity_exchange = "NSECM"
    secrets = (xs.TOKEN, xs.MD_TOKEN, xs.SECRET_KEY, xs.MD_SECRET_KEY)
    order_updates = "stream"

    def __init__(self) -> None:
        self.server: xs.XtsServer | None = None

    def start_server(self) -> xs.XtsServer:
        self.server = xs.XtsServer().start()
        return self.server

    def sign_in(self, account: Any, server: xs.XtsServer) -> SignIn:
        return XtsAdapter.login_direct(account)

    def expected_place(self, request: BrokerOrderRequest, server: xs.XtsServer) -> Any:
        limit = request.price if request.order_type in ("LIMIT", "SL") else 0
        stop = request.trigger_price if request.order_type in ("SL", "SL-M") else 0
        return {
            "exchangeSegment": "NSECM",
            "exchangeInstrumentID": 2885,
            "productType": request.product,
            "orderType": ORDER_TYPES[request.order_type],
            "orderSide": request.side,
            "timeInForce": request.validity,
            "disclosedQuantity": 0,
            "orderQuantity": request.quantity,
            "limitPrice": _number(limit),
            "stopPrice": _number(stop),
            "apiOrderSource": "",
            "orderUniqueIdentifier": request.tag,
        }

    def expected_modify(self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest) -> Any:
        order_type = change.order_type or request.order_type
        price = change.price if change.price is not None else request.price
        trigger = change.trigger_price if change.trigger_price is not None else request.trigger_price
        return {
            "appOrderID": int(broker_order_id),
            "modifiedProductType": request.product,
            "modifiedOrderType": ORDER_TYPES[order_type],
            "modifiedOrderQuantity": change.quantity if change.quantity is not None else request.quantity,
            "modifiedDisclosedQuantity": 0,
            "modifiedLimitPrice": _number(price if order_type in ("LIMIT", "SL") else 0),
            "modifiedStopPrice": _number(trigger if order_type in ("SL", "SL-M") else 0),
            "modifiedTimeInForce": request.validity,
            "orderUniqueIdentifier": request.tag,
        }

    def valid_frame(self, token: str, ltp: Decimal) -> str:
        segment, instrument = (int(part) for part in token.split("_"))
        return xs.tick_frame(segment, instrument, ltp)

    def master_file(self) -> Mapping[str, bytes]:
        return {"/apimarketdata/instruments/master": json.dumps({"type": "success", "result": xs.MASTER_TEXT}).encode()}


def _number(value: Any) -> Any:
    """A price as the server's JSON reader holds it: an int for a whole number, else a Decimal."""
    if value is None:
        return None
    decimal = Decimal(str(value))
    return int(decimal) if decimal == decimal.to_integral_value() else decimal
