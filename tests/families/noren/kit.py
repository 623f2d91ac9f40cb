"""NorenOMS's kit for the shared broker contract suite (tests/brokers/contract): Shoonya's registry
entry against the local NorenOMS server (server.py), with the exact ``jData`` objects the documentation
prescribes for the suite's orders."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from brokers.adapters import registry
from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn
from brokers.instrument_map import broker_symbol_for
from tests.families.noren.server import Instrument, NorenServer, zipped

UID = "FA12345"
PASSWORD = "Sh00nya-pass!"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
VENDOR_CODE = "FA12345_U"
API_SECRET = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
IMEI = "abc1234"
SUSERTOKEN = "3b97f4c67762259a9ded6dbd7bfafe2787e662b3870422ddd343a59895f423a0"

NSE_MASTER = (
    "Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,\n"
    "NSE,2885,1,RELIANCE,RELIANCE-EQ,EQ,0.05,\n"
    "NSE,1594,1,INFY,INFY-EQ,EQ,0.05,\n"
)
HEADERS = {
    "BSE": "Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,\n",
    "NFO": "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,\n",
    "BFO": "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,\n",
    "CDS": "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,\n",
    "MCX": "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,\n",
}


def master_files() -> dict[str, bytes]:
    files = {"NSE_symbols.txt.zip": zipped("NSE_symbols.txt", NSE_MASTER)}
    for exchange, header in HEADERS.items():
        files[f"{exchange}_symbols.txt.zip"] = zipped(f"{exchange}_symbols.txt", header)
    return files


def make_server(**overrides: Any) -> NorenServer:
    options: dict[str, Any] = {
        "uid": UID,
        "password": PASSWORD,
        "totp_secret": TOTP_SECRET,
        "vendor_code": VENDOR_CODE,
        "api_secret": API_SECRET,
        "imei": IMEI,
        "susertoken": SUSERTOKEN,
        "instruments": [
            Instrument("NSE", "2885", "RELIANCE-EQ", Decimal("1000.00")),
            Instrument("NSE", "1594", "INFY-EQ", Decimal("1500.00")),
        ],
        "master_files": master_files(),
    }
    options.update(overrides)
    return NorenServer(**options).start()


def _price(value: Decimal) -> str:
    return format(value, "f")


class NorenKit:
    family = "noren"
    broker = "shoonya"
    client_code = UID
    credentials: Mapping[str, str] = {
        "password": PASSWORD,
        "totp_secret": TOTP_SECRET,
        "vendor_code": VENDOR_CODE,
        "api_secret": API_SECRET,
        "imei": IMEI,
    }
    equity_token = "NSE|2885"
    equity_symbol = "RELIANCE-EQ"
    equity_exchange = "NSE"
    secrets = (PASSWORD, TOTP_SECRET, API_SECRET, SUSERTOKEN)
    order_updates = "stream"

    def start_server(self) -> NorenServer:
        return make_server()

    def sign_in(self, account: Any, server: Any) -> SignIn:
        return registry.family(account.broker).login_direct(account)

    def expected_place(self, request: BrokerOrderRequest, server: Any) -> dict[str, str]:
        symbol = broker_symbol_for(broker="noren", instrument_id=request.instrument_id)
        assert symbol is not None
        body = {
            "ordersource": "API",
            "uid": UID,
            "actid": UID,
            "trantype": {"BUY": "B", "SELL": "S"}[request.side],
            "prd": {"CNC": "C", "MIS": "I", "NRML": "M"}[request.product],
            "exch": symbol.exchange,
            "tsym": symbol.tradingsymbol,
            "qty": str(request.quantity),
            "dscqty": "0",
            "prctyp": {"MARKET": "MKT", "LIMIT": "LMT", "SL": "SL-LMT", "SL-M": "SL-MKT"}[request.order_type],
            "prc": _price(request.price) if request.order_type in {"LIMIT", "SL"} and request.price else "0",
        }
        if request.order_type in {"SL", "SL-M"} and request.trigger_price is not None:
            body["trgprc"] = _price(request.trigger_price)
        body["ret"] = request.validity
        body["remarks"] = request.tag
        return body

    def expected_modify(
        self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest
    ) -> dict[str, str]:
        symbol = broker_symbol_for(broker="noren", instrument_id=request.instrument_id)
        assert symbol is not None
        order_type = change.order_type or request.order_type
        price = change.price if change.price is not None else request.price
        body = {
            "ordersource": "API",
            "uid": UID,
            "actid": UID,
            "norenordno": broker_order_id,
            "exch": symbol.exchange,
            "tsym": symbol.tradingsymbol,
            "qty": str(change.quantity if change.quantity is not None else request.quantity),
            "prctyp": {"MARKET": "MKT", "LIMIT": "LMT", "SL": "SL-LMT", "SL-M": "SL-MKT"}[order_type],
            "prc": _price(price) if order_type in {"LIMIT", "SL"} and price is not None else "0",
        }
        trigger = change.trigger_price if change.trigger_price is not None else request.trigger_price
        if order_type in {"SL", "SL-M"} and trigger is not None:
            body["trgprc"] = _price(trigger)
        return body

    def valid_frame(self, token: str, ltp: Decimal) -> str:
        exchange, number = token.split("|", 1)
        return json.dumps(
            {
                "t": "tk",
                "e": exchange,
                "tk": number,
                "ts": "RELIANCE-EQ",
                "pp": "2",
                "ls": "1",
                "ti": "0.05",
                "lp": str(ltp),
                "pc": "0.50",
                "v": "162220",
                "o": str(ltp),
                "h": str(ltp),
                "l": str(ltp),
                "c": str(ltp),
                "ap": str(ltp),
                "bp1": str(ltp),
                "sp1": str(ltp),
                "bq1": "26",
                "sq1": "6325",
                "ft": str(int(time.time())),
            }
        )

    def master_file(self) -> Mapping[str, bytes]:
        return master_files()
