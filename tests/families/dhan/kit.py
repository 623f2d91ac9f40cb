"""The Dhan family's kit for the shared contract suite (``tests/brokers/contract``): the local Dhan
server and the exact wire format Dhan must receive for the suite's orders."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn
from families.dhan.adapter import DhanAdapter
from tests.families.dhan import server as ds
from tests.families.dhan import wire_format as wf

ORDER_TYPES = {"MARKET": "MARKET", "LIMIT": "LIMIT", "SL": "STOP_LOSS", "SL-M": "STOP_LOSS_MARKET"}
PRODUCTS = {"CNC": "CNC", "MIS": "INTRADAY", "NRML": "MARGIN"}
SEGMENTS = {
    "NSE": "NSE_EQ",
    "NFO": "NSE_FNO",
    "BSE": "BSE_EQ",
    "BFO": "BSE_FNO",
    "CDS": "NSE_CURRENCY",
    "MCX": "MCX_COMM",
}


class DhanKit:
    family = "dhan"
    broker = "dhan"
    client_code = ds.CLIENT_ID
    credentials: Mapping[str, str] = {"pin": ds.PIN, "totp_secret": ds.TOTP_SECRET}
    equity_token = "NSE_EQ:2885"
    equity_symbol = "RELIANCE"
    equity_exchange = "NSE_EQ"
    secrets = (ds.ACCESS_TOKEN, ds.PIN, ds.TOTP_SECRET)
    order_updates = "stream"

    def start_server(self) -> ds.DhanServer:
        return ds.DhanServer().start()

    def sign_in(self, account: Any, server: ds.DhanServer) -> SignIn:
        return DhanAdapter.login_direct(account)

    def expected_place(self, request: BrokerOrderRequest, server: ds.DhanServer) -> Any:
        priced, stop = request.order_type in {"LIMIT", "SL"}, request.order_type in {"SL", "SL-M"}
        body: dict[str, Any] = {
            "dhanClientId": ds.CLIENT_ID,
            "correlationId": request.tag,
            "transactionType": request.side,
            "exchangeSegment": SEGMENTS[request.exchange],
            "productType": PRODUCTS[request.product],
            "orderType": ORDER_TYPES[request.order_type],
            "validity": request.validity,
            "securityId": "2885" if request.tradingsymbol == "RELIANCE" else request.tradingsymbol,
            "quantity": request.quantity,
            "disclosedQuantity": 0,
            "price": request.price if priced else Decimal(0),
            "triggerPrice": request.trigger_price if stop else Decimal(0),
            "afterMarketOrder": request.variety == "amo",
        }
        if request.variety == "amo":
            body["amoTime"] = "OPEN"
        return body

    def expected_modify(self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest) -> Any:
        ours = change.order_type or request.order_type
        priced, stop = ours in {"LIMIT", "SL"}, ours in {"SL", "SL-M"}
        price = change.price if change.price is not None else request.price
        trigger = change.trigger_price if change.trigger_price is not None else request.trigger_price
        return {
            "dhanClientId": ds.CLIENT_ID,
            "orderId": broker_order_id,
            "orderType": ORDER_TYPES[ours],
            "legName": "ENTRY_LEG",
            "quantity": change.quantity if change.quantity is not None else request.quantity,
            "price": price if priced else Decimal(0),
            "disclosedQuantity": 0,
            "triggerPrice": trigger if stop else Decimal(0),
            "validity": "DAY",
        }

    def valid_frame(self, token: str, ltp: Decimal) -> bytes:
        segment, _, security_id = token.partition(":")
        return wf.ticker_packet(segment, int(security_id), ltp)

    def master_file(self) -> Mapping[str, bytes]:
        return {"api-scrip-master.csv": ds.MASTER_CSV.encode()}


def make_kit() -> DhanKit:
    return DhanKit()
