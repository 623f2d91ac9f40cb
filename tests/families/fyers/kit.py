"""The Fyers family's kit for the shared contract suite (tests/brokers/contract/kit.py): its local
server, its redirect sign-in against it, and the exact bodies Fyers documents for the suite's orders."""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from brokers.adapters.base import BrokerModifyRequest, BrokerOrderRequest, SignIn
from tests.families.fyers import hsm_wire
from tests.families.fyers import server as fake

# Fyers' codes for our order types, sides and products (fyers-apiv3 place_order's docstring).
TYPES = {"LIMIT": 1, "MARKET": 2, "SL-M": 3, "SL": 4}
SIDES = {"BUY": 1, "SELL": -1}
PRODUCTS = {"CNC": "CNC", "MIS": "INTRADAY", "NRML": "MARGIN"}

EQUITY_TOKEN = fake.MARKET["NSE:RELIANCE-EQ"][0]


def master_csv(rows: list[list[str]]) -> bytes:
    return "".join(",".join(row) + "\n" for row in rows).encode()


def master_row(fytoken: str, description: str, ticker: str, scrip: str, *, exchange="10", segment="10") -> list[str]:
    """One row of Fyers' headerless master: fytoken, details, instrument type, lot, tick, ISIN, session,
    updated, expiry, ticker, exchange, segment, scrip code, underlying, underlying scrip, strike, option
    type, underlying fytoken, reserved..."""
    return [fytoken, description, "0", "1", "0.05", "INE002A01018", "0915-1530|1815-1915:", "1722470400", "",
            ticker, exchange, segment, scrip, ticker.split(":")[1].split("-")[0], scrip, "-1.0", "XX", fytoken, "",
            "0", "0.0"]  # fmt: skip


class FyersKit:
    family = "fyers"
    broker = "fyers"
    client_code = fake.FY_ID
    credentials: Mapping[str, str] = {
        "app_id": fake.APP_ID,
        "secret_key": fake.SECRET_KEY,
        "redirect_uri": fake.REDIRECT_URI,
    }
    equity_token = EQUITY_TOKEN
    equity_symbol = "NSE:RELIANCE-EQ"
    equity_exchange = "NSE_CM"
    secrets = (fake.ACCESS_TOKEN, fake.AUTH_CODE, fake.HSM_KEY, fake.REFRESH_TOKEN, fake.SECRET_KEY)
    order_updates = "stream"

    def start_server(self) -> fake.FyersServer:
        server = fake.FyersServer()
        server.master = {
            name.removesuffix(".csv"): body for name, body in self.master_file().items() if name.endswith(".csv")
        }
        return server

    def sign_in(self, account: Any, server: fake.FyersServer) -> SignIn:
        """Open the login page (the server's generate-authcode), follow Fyers' redirect back with its
        auth code, and finish the sign-in with it, as the terminal's callback does."""
        from families.fyers.adapter import FyersAdapter

        page = urlsplit(FyersAdapter.login_start(account, state="contract-state"))
        connection = http.client.HTTPConnection(page.hostname or "127.0.0.1", page.port, timeout=5)
        try:  # not through httpx, whose request log would carry the page's query
            connection.request("GET", f"{page.path}?{page.query}")
            answer = connection.getresponse()
            location = answer.getheader("Location") or ""
            answer.read()
        finally:
            connection.close()
        assert answer.status == 302, f"the login page answered {answer.status}"
        params = dict(parse_qsl(urlsplit(location).query))
        assert params.get("state") == "contract-state"
        return FyersAdapter.login_finish(account, params)

    def expected_place(self, request: BrokerOrderRequest, server: Any) -> dict[str, Any]:
        priced, stopped = request.order_type in ("LIMIT", "SL"), request.order_type in ("SL", "SL-M")
        return {
            "symbol": "NSE:RELIANCE-EQ",
            "qty": request.quantity,
            "type": TYPES[request.order_type],
            "side": SIDES[request.side],
            "productType": PRODUCTS[request.product],
            "limitPrice": request.price if priced else 0,
            "stopPrice": request.trigger_price if stopped else 0,
            "validity": request.validity,
            "disclosedQty": 0,
            "offlineOrder": request.variety == "amo",
            "stopLoss": 0,
            "takeProfit": 0,
            "orderTag": request.tag,
        }

    def expected_modify(
        self, broker_order_id: str, request: BrokerOrderRequest, change: BrokerModifyRequest
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"id": broker_order_id}
        if change.order_type is not None:
            body["type"] = TYPES[change.order_type]
        if change.quantity is not None:
            body["qty"] = change.quantity
        if change.price is not None and change.order_type in (None, "LIMIT", "SL"):
            body["limitPrice"] = change.price
        if change.trigger_price is not None:
            body["stopPrice"] = change.trigger_price
        return body

    def valid_frame(self, token: str, ltp: Decimal) -> bytes:
        topic = hsm_wire.topic_of(token)
        values = {"ltp": hsm_wire.raw_price(ltp), "exch_feed_time": 1_754_290_800, "vol_traded_today": 10}
        packet = hsm_wire.snapshot(1, topic, values, exchange_token=token[10:], symbol="RELIANCE-EQ")
        return hsm_wire.data(1, [packet])

    def master_file(self) -> Mapping[str, bytes]:
        equity = master_row(EQUITY_TOKEN, "RELIANCE INDUSTRIES LTD", "NSE:RELIANCE-EQ", "2885")
        sbi = master_row(fake.MARKET["NSE:SBIN-EQ"][0], "STATE BANK OF INDIA", "NSE:SBIN-EQ", "3045")
        future = master_row(
            "101125082835001", "NIFTY 25 Aug 28 FUT", "NSE:NIFTY25AUGFUT", "35001", exchange="10", segment="11"
        )
        return {
            "NSE_CM.csv": master_csv([equity, sbi]),
            "NSE_FO.csv": master_csv([future]),
            "NSE_CD.csv": b"",
            "BSE_CM.csv": b"",
            "BSE_FO.csv": b"",
            "MCX_COM.csv": b"",
        }


def make_kit() -> FyersKit:
    return FyersKit()
