"""A local Angel One SmartAPI server for tests, written from the public documentation
(https://smartapi.angelbroking.com/docs and the SDK's README): REST on a ThreadingHTTPServer, the two
websockets (SmartWebSocketV2 market data, the order-update stream) on a ``websockets`` server, each
in a thread of its own, on 127.0.0.1 only.

It validates every request against the documented format: the SDK's headers on every REST call
(``X-PrivateKey``, ``X-UserType: USER``, ``X-SourceID: WEB``, the client's IPs and MAC, JSON
``Accept``/``Content-Type``, ``Authorization: Bearer <jwt>`` on the secure routes), every body's
fields, types (strings) and enumerations, the websockets' handshake headers and subscription
messages. A request it would not accept is answered with Angel's error envelope AND recorded in
``violations`` (the tests assert it stays empty).

It keeps a small, coherent book: a MARKET order fills at once (a trade, a position), a LIMIT order
rests "open" until modified, cancelled or filled on demand (``fill``), a stop-loss order waits in
"trigger pending". Faults on demand (``fail_next``, the contract suite's names), order updates pushed
on the order stream (``push_order_update``), ticks and raw messages on the market stream, streams
dropped abruptly (``drop_streams``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import itertools
import json
import re
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Response, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from tests.brokers.contract.kit import REJECT_MESSAGE
from tests.brokers.local_server import LocalHandler, LocalServer, Stream
from tests.families.angel import wire

IST = ZoneInfo("Asia/Kolkata")

API_KEY = "angelapikey7Q2x"
CLIENT_CODE = "A1234567"
PIN = "4821"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
JWT = "eyJhbGciOiJIUzUxMiJ9.angel-session-jwt.sig0001"
REFRESH = "eyJhbGciOiJIUzUxMiJ9.angel-refresh.sig0002"
FEED = "eyJhbGciOiJIUzUxMiJ9.angel-feed.sig0003"

ORDER = "/rest/secure/angelbroking/order/v1"
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/rest/auth/angelbroking/user/v1/loginByPassword"): "login",
    ("POST", f"{ORDER}/placeOrder"): "place",
    ("POST", f"{ORDER}/modifyOrder"): "modify",
    ("POST", f"{ORDER}/cancelOrder"): "cancel",
    ("GET", f"{ORDER}/getOrderBook"): "orders",
    ("GET", f"{ORDER}/getTradeBook"): "trades",
    ("GET", f"{ORDER}/getPosition"): "positions",
    ("GET", "/rest/secure/angelbroking/portfolio/v1/getHolding"): "holdings",
    ("GET", "/rest/secure/angelbroking/user/v1/getRMS"): "funds",
    ("POST", "/rest/secure/angelbroking/market/v1/quote"): "quote",
}
MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
MARKET_PATH, ORDERS_PATH = "/smart-stream", "/smart-order-update"

VARIETIES = {"NORMAL", "STOPLOSS", "AMO", "ROBO"}
ORDER_TYPES = {"MARKET", "LIMIT", "STOPLOSS_LIMIT", "STOPLOSS_MARKET"}
STOP_TYPES = {"STOPLOSS_LIMIT", "STOPLOSS_MARKET"}
PRODUCTS = {"DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO"}
EXCHANGES = {"NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "NCDEX"}
EXCHANGE_TYPES = {1: "NSE", 2: "NFO", 3: "BSE", 4: "BFO", 5: "MCX", 7: "NCDEX", 13: "CDS"}
PLACE_REQUIRED = {
    "variety",
    "tradingsymbol",
    "symboltoken",
    "transactiontype",
    "exchange",
    "ordertype",
    "producttype",
    "duration",
    "price",
    "quantity",
}
PLACE_OPTIONAL = {"triggerprice", "squareoff", "stoploss", "trailingStopLoss", "disclosedquantity", "ordertag"}
MODIFY_REQUIRED = {
    "variety",
    "orderid",
    "ordertype",
    "producttype",
    "duration",
    "price",
    "quantity",
    "tradingsymbol",
    "symboltoken",
    "exchange",
}
MODIFY_OPTIONAL = {"triggerprice", "disclosedquantity"}
# The order-update stream's "order-status" code per order status (the SmartAPI order-status docs).
UPDATE_CODES = {
    "open": "AB01",
    "cancelled": "AB02",
    "rejected": "AB03",
    "complete": "AB05",
    "trigger pending": "AB10",
}
INVALID_PAYLOAD = "Invalid Request Payload."
_NUMBER = re.compile(r"\d+(\.\d+)?")
_MAC = re.compile(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")

# The instruments the server knows: (exchange, token) -> trading symbol, last price.
MARKET: dict[tuple[str, str], tuple[str, Decimal]] = {
    ("NSE", "2885"): ("RELIANCE-EQ", Decimal("1000")),
    ("NSE", "1594"): ("INFY-EQ", Decimal("1500.5")),
    ("BSE", "500325"): ("RELIANCE", Decimal("1000.2")),
    ("NFO", "35001"): ("NIFTY26DECFUT", Decimal("24000")),
}
MASTER: list[dict[str, str]] = [
    {
        "token": "2885",
        "symbol": "RELIANCE-EQ",
        "name": "RELIANCE",
        "expiry": "",
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": "",
        "exch_seg": "NSE",
        "tick_size": "10.000000",
    },
    {
        "token": "1594",
        "symbol": "INFY-EQ",
        "name": "INFY",
        "expiry": "",
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": "",
        "exch_seg": "NSE",
        "tick_size": "5.000000",
    },
    {
        "token": "500325",
        "symbol": "RELIANCE",
        "name": "RELIANCE",
        "expiry": "",
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": "",
        "exch_seg": "BSE",
        "tick_size": "5.000000",
    },
    {
        "token": "35001",
        "symbol": "NIFTY26DECFUT",
        "name": "NIFTY",
        "expiry": "29DEC2026",
        "strike": "-1.000000",
        "lotsize": "75",
        "instrumenttype": "FUTIDX",
        "exch_seg": "NFO",
        "tick_size": "10.000000",
    },
    {
        "token": "99926000",
        "symbol": "Nifty 50",
        "name": "NIFTY",
        "expiry": "",
        "strike": "0.000000",
        "lotsize": "1",
        "instrumenttype": "AMXIDX",
        "exch_seg": "NSE",
        "tick_size": "0.000000",
    },
    {
        "token": "440210",
        "symbol": "GUARSEED10DEC2026",
        "name": "GUARSEED",
        "expiry": "10DEC2026",
        "strike": "-1.000000",
        "lotsize": "5",
        "instrumenttype": "FUTCOM",
        "exch_seg": "NCDEX",
        "tick_size": "100.000000",
    },
]


def totp(secret: str, at: float) -> str:
    """RFC 6238 (30 s, six digits, SHA-1): written here apart from the code under test."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


class Refusal(Exception):
    def __init__(self, message: str, code: str, status: int = 200) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def envelope(data: Any) -> dict[str, Any]:
    return {"status": True, "message": "SUCCESS", "errorcode": "", "data": data}


def failure(message: str, code: str) -> dict[str, Any]:
    return {"status": False, "message": message, "errorcode": code, "data": None}


def _json(value: Any) -> bytes:
    def default(item: Any) -> Any:
        if isinstance(item, Decimal):
            return float(item)
        raise TypeError(type(item))

    return json.dumps(value, default=default).encode()


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(IST)).astimezone(IST).strftime("%d-%b-%Y %H:%M:%S")


@dataclass(eq=False)
class _Socket(Stream):
    # kind: "market" or "orders"
    modes: dict[tuple[int, str], int] = field(default_factory=dict)  # (exchange type, token) -> mode


class AngelServer(LocalServer):
    """The server (module docstring). ``url`` is the REST root, ``ws_url`` the market stream."""

    name = "angel"

    def __init__(self, *, hang_seconds: float = 3.0) -> None:
        super().__init__()
        self.hang_seconds = hang_seconds
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.holdings = [
            {
                "tradingsymbol": "RELIANCE-EQ",
                "exchange": "NSE",
                "isin": "INE002A01018",
                "t1quantity": 0,
                "realisedquantity": 5,
                "quantity": 5,
                "authorisedquantity": 0,
                "product": "DELIVERY",
                "collateralquantity": None,
                "collateraltype": None,
                "haircut": 0,
                "averageprice": 2500.5,
                "ltp": 1000,
                "symboltoken": "2885",
                "close": 995,
                "profitandloss": -7502,
                "pnlpercentage": -60.01,
            }
        ]
        self.market = dict(MARKET)
        self.master = list(MASTER)
        self._order_ids = itertools.count(261206000000101)
        self._fill_ids = itertools.count(50000001)

    @property
    def ws_url(self) -> str:
        return f"{self.ws_root}{MARKET_PATH}"

    def endpoints(self) -> dict[str, str]:
        return {
            "api": self.url,
            "ws": self.ws_url,
            "order_ws": f"{self.ws_root}{ORDERS_PATH}",
            "master": self.url + MASTER_PATH,
        }

    def handler_class(self) -> type[LocalHandler]:
        return _Handler

    # --- what tests use --------------------------------------------------------------------------
    def fill(self, broker_order_id: str, price: Decimal) -> None:
        with self._lock:
            self._fill(self.orders[broker_order_id], price)

    def push_order_update(self, broker_order_id: str) -> None:
        with self._lock:
            order = dict(self.orders[broker_order_id])
        message = {
            "user-id": CLIENT_CODE,
            "status-code": "200",
            "order-status": UPDATE_CODES.get(order["status"], "AB04"),
            "error-message": "",
            "orderData": order,
        }
        self.send_all(json.dumps(message, default=float), "orders")
        return None

    def push_tick(self, token: str, ltp: Decimal) -> None:
        segment, _, number = token.partition(":")
        kind = next(k for k, s in EXCHANGE_TYPES.items() if s == segment)
        packet = wire.Packet(
            token=number,
            ltp=ltp,
            exchange_type=kind,
            exchange_ms=int(time.time() * 1000),
            bids=[(ltp - Decimal("0.05"), 10, 2)],
            asks=[(ltp + Decimal("0.05"), 12, 3)],
            divisor=10_000_000 if kind == 13 else 100,
        )

        async def send() -> None:
            for sock in self.open_streams("market"):
                assert isinstance(sock, _Socket)
                mode = sock.modes.get((kind, number), wire.SNAP_QUOTE)
                with contextlib.suppress(ConnectionClosed):
                    await sock.socket.send(wire.encode(packet, mode))

        self.call(send())

    def push_raw(self, message: str | bytes) -> None:
        self.send_all(message, "market")

    # --- the book --------------------------------------------------------------------------------
    def serve(self, call: str, body: Any) -> Any:
        """The data of a valid request, or Refusal."""
        if call == "place":
            return self._place(body)
        if call == "modify":
            return self._modify(body)
        if call == "cancel":
            return self._cancel(body)
        if call == "orders":
            with self._lock:
                return [dict(order) for order in self.orders.values()] or None
        if call == "trades":
            with self._lock:
                return [dict(trade) for trade in self.trades] or None
        if call == "positions":
            return self._positions() or None
        if call == "holdings":
            return list(self.holdings)
        if call == "funds":
            return {
                "net": "99850.25",
                "availablecash": "100000.00",
                "availableintradaypayin": "0",
                "availablelimitmargin": "0",
                "collateral": "0",
                "m2munrealized": "0",
                "m2mrealized": "0",
                "utiliseddebits": "149.75",
                "utilisedspan": "0",
                "utilisedoptionpremium": "0",
                "utilisedholdingsales": "0",
                "utilisedexposure": "0",
                "utilisedturnover": "0",
                "utilisedpayout": "0",
            }
        if call == "quote":
            return self._quote(body)
        raise AssertionError(call)

    def _violate(self, why: str, code: str = "AB2000", message: str | None = None) -> Refusal:
        self.violations.append(why)
        return Refusal(message or why, code)

    def _strings(self, body: Any, required: set[str], optional: set[str], what: str) -> dict[str, str]:
        if not isinstance(body, dict):
            raise self._violate(f"{what}: the body is not a JSON object")
        missing, unknown = required - body.keys(), body.keys() - required - optional
        if missing or unknown:
            raise self._violate(f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name, value in body.items():
            if not isinstance(value, str):
                raise self._violate(f"{what}: {name} is {type(value).__name__}, not a string")
        return body

    def _enum(self, body: dict[str, str], name: str, allowed: set[str], what: str, code: str = "AB2000") -> str:
        if body[name] not in allowed:
            raise self._violate(f"{what}: {name}={body[name]!r} is not one of {sorted(allowed)}", code)
        return body[name]

    def _number(self, body: dict[str, str], name: str, what: str, *, whole: bool = False) -> Decimal:
        value = body.get(name, "")
        if not _NUMBER.fullmatch(value) or (whole and "." in value):
            raise self._violate(f"{what}: {name}={value!r} is not a {'whole ' if whole else ''}number")
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            raise self._violate(f"{what}: {name}={value!r}") from None

    def _terms(self, body: dict[str, str], what: str) -> tuple[str, Decimal, Decimal | None, int]:
        """The order type, price, trigger and quantity of a place or modify body, checked."""
        ordertype = self._enum(body, "ordertype", ORDER_TYPES, what)
        self._enum(body, "producttype", PRODUCTS, what, "AB1012")
        self._enum(body, "duration", {"DAY", "IOC"}, what)
        self._enum(body, "exchange", EXCHANGES, what)
        quantity = self._number(body, "quantity", what, whole=True)
        if quantity <= 0:
            raise self._violate(f"{what}: quantity {quantity} is not positive")
        price = self._number(body, "price", what)
        if ordertype in {"LIMIT", "STOPLOSS_LIMIT"} and price <= 0:
            raise self._violate(f"{what}: a {ordertype} order without its price")
        if ordertype in {"MARKET", "STOPLOSS_MARKET"} and price != 0:
            raise self._violate(f"{what}: a {ordertype} order with a price")
        trigger = None
        if ordertype in STOP_TYPES:
            if "triggerprice" not in body:
                raise self._violate(f"{what}: a {ordertype} order without its triggerprice")
            trigger = self._number(body, "triggerprice", what)
        elif body.get("triggerprice", "0") not in ("0", "0.0"):
            raise self._violate(f"{what}: a triggerprice on a {ordertype} order")
        key = (body["exchange"], body["symboltoken"])
        if key not in self.market or self.market[key][0] != body["tradingsymbol"]:
            raise Refusal("Symbol Not Found", "AB1009")  # an unknown symbol is Angel's refusal, not bad form
        return ordertype, price, trigger, int(quantity)

    def _place(self, body: Any) -> dict[str, str]:
        what = "placeOrder"
        body = self._strings(body, PLACE_REQUIRED, PLACE_OPTIONAL, what)
        variety = self._enum(body, "variety", VARIETIES, what, "AB1008")
        self._enum(body, "transactiontype", {"BUY", "SELL"}, what)
        ordertype, price, trigger, quantity = self._terms(body, what)
        if (variety == "STOPLOSS") != (ordertype in STOP_TYPES) and variety in ("NORMAL", "STOPLOSS"):
            raise self._violate(f"{what}: variety {variety} with ordertype {ordertype}", "AB1008")
        tag = body.get("ordertag", "")
        if len(tag) > 20:
            too_long = "Ordertag length should not exceed 20 characters"
            raise self._violate(f"{what}: ordertag of {len(tag)} characters", "AB4008", too_long)
        for name in ("squareoff", "stoploss"):
            if name in body:
                self._number(body, name, what)
        with self._lock:
            orderid = str(next(self._order_ids))
            now = _stamp()
            order = {
                "variety": variety,
                "ordertype": ordertype,
                "producttype": body["producttype"],
                "duration": body["duration"],
                "price": price,
                "triggerprice": trigger or 0,
                "quantity": str(quantity),
                "disclosedquantity": "0",
                "squareoff": 0,
                "stoploss": 0,
                "trailingstoploss": 0,
                "tradingsymbol": body["tradingsymbol"],
                "transactiontype": body["transactiontype"],
                "exchange": body["exchange"],
                "symboltoken": body["symboltoken"],
                "ordertag": tag,
                "instrumenttype": "",
                "strikeprice": -1,
                "optiontype": "",
                "expirydate": "",
                "lotsize": "1",
                "cancelsize": "0",
                "averageprice": 0,
                "filledshares": "0",
                "unfilledshares": str(quantity),
                "orderid": orderid,
                "text": "",
                "status": "trigger pending" if ordertype in STOP_TYPES else "open",
                "orderstatus": "trigger pending" if ordertype in STOP_TYPES else "open",
                "updatetime": now,
                "exchtime": now,
                "exchorderupdatetime": now,
                "fillid": "",
                "filltime": "",
                "parentorderid": "",
                "uniqueorderid": f"{orderid[-8:]}-angel-{len(self.orders):04d}",
                "exchangeorderid": f"1100000{orderid[-8:]}",
            }
            self.orders[orderid] = order
            if ordertype == "MARKET":
                self._fill(order, self.market[(body["exchange"], body["symboltoken"])][1])
        return {"script": body["tradingsymbol"], "orderid": orderid, "uniqueorderid": order["uniqueorderid"]}

    def _open_order(self, orderid: Any, variety: str, what: str) -> dict[str, Any]:
        order = self.orders.get(orderid) if isinstance(orderid, str) else None
        if order is None:
            raise Refusal("Order not found", "AB1013")
        if order["variety"] != variety:
            raise self._violate(f"{what}: variety {variety} for an order of variety {order['variety']}", "AB1008")
        if order["status"] not in ("open", "trigger pending"):
            raise Refusal(f"Order is already {order['status']}", "AB2000")
        return order

    def _modify(self, body: Any) -> dict[str, str]:
        what = "modifyOrder"
        body = self._strings(body, MODIFY_REQUIRED, MODIFY_OPTIONAL, what)
        variety = self._enum(body, "variety", VARIETIES, what, "AB1008")
        ordertype, price, trigger, quantity = self._terms(body, what)
        with self._lock:
            order = self._open_order(body["orderid"], variety, what)
            for name in ("tradingsymbol", "symboltoken", "exchange", "producttype", "duration"):
                if body[name] != order[name]:
                    raise self._violate(f"{what}: {name} {body[name]!r} is not the order's {order[name]!r}")
            if quantity <= int(order["filledshares"]):
                raise Refusal("Quantity must be more than the filled quantity", "AB2000")
            order.update(
                ordertype=ordertype,
                price=price,
                triggerprice=trigger or 0,
                quantity=str(quantity),
                unfilledshares=str(quantity - int(order["filledshares"])),
                status="trigger pending" if ordertype in STOP_TYPES else "open",
                updatetime=_stamp(),
            )
            order["orderstatus"] = order["status"]
        return {"orderid": body["orderid"], "uniqueorderid": order["uniqueorderid"]}

    def _cancel(self, body: Any) -> dict[str, str]:
        what = "cancelOrder"
        body = self._strings(body, {"variety", "orderid"}, set(), what)
        variety = self._enum(body, "variety", VARIETIES, what, "AB1008")
        with self._lock:
            order = self._open_order(body["orderid"], variety, what)
            order.update(status="cancelled", orderstatus="cancelled", cancelsize=order["unfilledshares"])
            order.update(unfilledshares="0", updatetime=_stamp())
        return {"orderid": body["orderid"], "uniqueorderid": order["uniqueorderid"]}

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        quantity = int(order["quantity"])
        now = datetime.now(IST)
        fillid = str(next(self._fill_ids))
        order.update(
            status="complete",
            orderstatus="complete",
            filledshares=str(quantity),
            unfilledshares="0",
            averageprice=price,
            fillid=fillid,
            filltime=now.strftime("%H:%M:%S"),
            updatetime=_stamp(now),
        )
        self.trades.append(
            {
                "exchange": order["exchange"],
                "producttype": order["producttype"],
                "tradingsymbol": order["tradingsymbol"],
                "instrumenttype": "",
                "symbolgroup": "EQ",
                "strikeprice": "-1",
                "optiontype": "",
                "expirydate": "",
                "marketlot": "1",
                "precision": "2",
                "multiplier": "-1",
                "tradevalue": str(price * quantity),
                "transactiontype": order["transactiontype"],
                "fillprice": price,
                "fillsize": str(quantity),
                "orderid": order["orderid"],
                "fillid": fillid,
                "filltime": now.strftime("%H:%M:%S"),
            }
        )

    def _positions(self) -> list[dict[str, Any]]:
        with self._lock:
            trades = list(self.trades)
            tokens = {o["orderid"]: o["symboltoken"] for o in self.orders.values()}
        book: dict[tuple[str, str, str], dict[str, Any]] = {}
        for trade in trades:
            key = (trade["exchange"], tokens[trade["orderid"]], trade["producttype"])
            row = book.setdefault(key, {"buy": 0, "sell": 0, "buyvalue": Decimal(0), "sellvalue": Decimal(0), **trade})
            side = "buy" if trade["transactiontype"] == "BUY" else "sell"
            row[side] += int(trade["fillsize"])
            row[f"{side}value"] += Decimal(str(trade["fillprice"])) * int(trade["fillsize"])
        out = []
        for (exchange, token, product), row in book.items():
            net = row["buy"] - row["sell"]
            average = (row["buyvalue"] / row["buy"]) if net > 0 and row["buy"] else Decimal(0)
            out.append(
                {
                    "exchange": exchange,
                    "symboltoken": token,
                    "producttype": product,
                    "tradingsymbol": row["tradingsymbol"],
                    "symbolname": row["tradingsymbol"].split("-")[0],
                    "instrumenttype": "",
                    "buyqty": str(row["buy"]),
                    "sellqty": str(row["sell"]),
                    "netqty": str(net),
                    "avgnetprice": str(average.quantize(Decimal("0.01"))),
                    "netvalue": str(-(row["buyvalue"] - row["sellvalue"])),
                    "buyamount": str(row["buyvalue"]),
                    "sellamount": str(row["sellvalue"]),
                }
            )
        return out

    def _quote(self, body: Any) -> dict[str, Any]:
        what = "quote"
        if not isinstance(body, dict) or set(body) != {"mode", "exchangeTokens"}:
            raise self._violate(f"{what}: the body is not {{mode, exchangeTokens}}")
        if body["mode"] not in ("LTP", "OHLC", "FULL"):
            raise self._violate(f"{what}: mode {body['mode']!r}")
        tokens = body["exchangeTokens"]
        if not isinstance(tokens, dict) or not tokens:
            raise self._violate(f"{what}: exchangeTokens is not an object of exchanges")
        fetched, unfetched = [], []
        count = 0
        for exchange, listed in tokens.items():
            if exchange not in EXCHANGES or not isinstance(listed, list):
                raise self._violate(f"{what}: exchangeTokens[{exchange!r}]")
            for token in listed:
                count += 1
                if not isinstance(token, str) or not token.isdigit():
                    raise self._violate(f"{what}: token {token!r} is not a string of digits")
                known = self.market.get((exchange, token))
                if known is None:
                    unfetched.append({"exchange": exchange, "symbolToken": token, "message": "", "errorCode": ""})
                    continue
                symbol, ltp = known
                fetched.append(
                    {
                        "exchange": exchange,
                        "tradingSymbol": symbol,
                        "symbolToken": token,
                        "ltp": ltp,
                        "open": ltp - 10,
                        "high": ltp + 10,
                        "low": ltp - 15,
                        "close": ltp - 5,
                        "lastTradeQty": 5,
                        "exchFeedTime": _stamp(),
                        "exchTradeTime": _stamp(),
                        "netChange": 5,
                        "percentChange": 0.5,
                        "avgPrice": ltp,
                        "tradeVolume": 123456,
                        "opnInterest": 0,
                        "lowerCircuit": ltp * Decimal("0.9"),
                        "upperCircuit": ltp * Decimal("1.1"),
                        "totBuyQuan": 1000,
                        "totSellQuan": 2000,
                        "52WeekLow": ltp / 2,
                        "52WeekHigh": ltp * 2,
                        "depth": {
                            "buy": [{"price": ltp - Decimal("0.05"), "quantity": 10, "orders": 2}],
                            "sell": [{"price": ltp + Decimal("0.05"), "quantity": 12, "orders": 3}],
                        },
                    }
                )
        if count > 50:
            raise self._violate(f"{what}: {count} tokens in one request (at most 50)")
        return {"fetched": fetched, "unfetched": unfetched}

    # --- REST plumbing ---------------------------------------------------------------------------
    def check_headers(self, call: str, method: str, headers: dict[str, str]) -> Refusal | None:
        """Angel's answer for a request without the documented headers (recorded as a violation), or
        for a secure call without the live session's token; None when the headers are right."""
        expected = {"accept": "application/json", "x-usertype": "USER", "x-sourceid": "WEB", "x-privatekey": API_KEY}
        if method == "POST":
            expected["content-type"] = "application/json"
        for name, value in expected.items():
            if headers.get(name, "").split(";")[0].strip() != value:
                return self._violate(f"{call}: header {name}={headers.get(name)!r}, not {value!r}", "AG8004")
        for name in ("x-clientlocalip", "x-clientpublicip"):
            try:
                ipaddress.ip_address(headers.get(name, ""))
            except ValueError:
                return self._violate(f"{call}: header {name}={headers.get(name)!r} is not an IP address", "AG8004")
        if not _MAC.fullmatch(headers.get("x-macaddress", "")):
            return self._violate(f"{call}: header x-macaddress={headers.get('x-macaddress')!r}", "AG8004")
        if call == "login":
            if "authorization" in headers:
                return self._violate("login: an Authorization header on the sign-in", "AG8004")
            return None
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return self._violate(f"{call}: Authorization is not 'Bearer <jwt>'", "AG8003")
        if authorization != f"Bearer {JWT}":
            return Refusal("Invalid Token", "AG8001", 401)
        return None

    def login(self, body: Any) -> dict[str, str]:
        body = self._strings(body, {"clientcode", "password", "totp"}, {"state"}, "loginByPassword")
        now = time.time()
        if body["clientcode"] != CLIENT_CODE or body["password"] != PIN:
            raise Refusal("Invalid clientcode or password", "AB1007")
        if body["totp"] not in {totp(TOTP_SECRET, now), totp(TOTP_SECRET, now - 30)}:
            raise Refusal("Invalid totp", "AB1050")
        return {"jwtToken": JWT, "refreshToken": REFRESH, "feedToken": FEED, "state": body.get("state", "")}

    # --- the streams -----------------------------------------------------------------------------
    def ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path not in (MARKET_PATH, ORDERS_PATH):
            return connection.respond(HTTPStatus.NOT_FOUND, "no such stream\n")
        expected = {
            "Authorization": f"Bearer {JWT}",
            "x-api-key": API_KEY,
            "x-client-code": CLIENT_CODE,
            "x-feed-token": FEED,
        }
        for name, value in expected.items():
            got = request.headers.get(name)
            if got is None:
                self.violations.append(f"{path}: handshake without {name}")
            if got != value:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid headers\n")
        return None

    def stream_for(self, socket: ServerConnection) -> _Socket:
        assert socket.request is not None
        kind = "market" if urlsplit(socket.request.path).path == MARKET_PATH else "orders"
        return _Socket(socket=socket, kind=kind)

    async def on_connect(self, stream: Stream) -> None:
        if stream.kind == "orders":  # the stream's greeting on connection: no order in it
            greeting = {
                "user-id": CLIENT_CODE,
                "status-code": "200",
                "order-status": "AB00",
                "error-message": "",
                "orderData": {"orderid": "", "ordertag": "", "status": ""},
            }
            await stream.socket.send(json.dumps(greeting))

    async def on_message(self, sock: Stream, message: str | bytes) -> None:
        assert isinstance(sock, _Socket)
        if message == "ping":
            await sock.socket.send("pong")
            return
        if sock.kind == "orders" or not isinstance(message, str):
            self.violations.append(f"{sock.kind} stream: unexpected message {message!r:.80}")
            return
        try:
            request = json.loads(message)
            problem = _subscription_problem(request)
        except ValueError:
            request, problem = None, "not JSON"
        if problem is not None:
            self.violations.append(f"market stream: {problem}: {message[:120]}")
            correlation = request.get("correlationID", "") if isinstance(request, dict) else ""
            await sock.socket.send(
                json.dumps({"correlationID": correlation, "errorCode": "E1002", "errorMessage": INVALID_PAYLOAD})
            )
            return
        self.subscriptions.append(request)
        mode = request["params"]["mode"]
        for group in request["params"]["tokenList"]:
            for token in group["tokens"]:
                if request["action"] == 1:
                    sock.modes[(group["exchangeType"], token)] = mode
                else:
                    sock.modes.pop((group["exchangeType"], token), None)


def _subscription_problem(request: Any) -> str | None:
    """Why a market-stream request is not SmartWebSocketV2's subscribe/unsubscribe, or None."""
    if not isinstance(request, dict) or set(request) != {"correlationID", "action", "params"}:
        return "not {correlationID, action, params}"
    correlation = request["correlationID"]
    if not isinstance(correlation, str) or len(correlation) > 10 or not correlation.isalnum():
        return "correlationID is not up to 10 letters and digits"
    if request["action"] not in (0, 1) or isinstance(request["action"], bool):
        return "action is not 0 or 1"
    params = request["params"]
    if not isinstance(params, dict) or set(params) != {"mode", "tokenList"}:
        return "params is not {mode, tokenList}"
    if params["mode"] not in (1, 2, 3, 4) or isinstance(params["mode"], bool):
        return "mode is not 1 to 4"
    if not isinstance(params["tokenList"], list) or not params["tokenList"]:
        return "tokenList is not a list"
    total = 0
    for group in params["tokenList"]:
        if not isinstance(group, dict) or set(group) != {"exchangeType", "tokens"}:
            return "a tokenList entry is not {exchangeType, tokens}"
        if group["exchangeType"] not in EXCHANGE_TYPES or isinstance(group["exchangeType"], bool):
            return f"exchangeType {group['exchangeType']!r}"
        tokens = group["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t.isdigit() for t in tokens):
            return "tokens are not strings of digits"
        total += len(group["tokens"])
    if total > 1000:
        return "more than 1000 tokens"
    return None


class _Handler(LocalHandler):
    local: AngelServer

    def _handle(self) -> None:
        server = self.local
        split = urlsplit(self.path)
        raw = self.read_body()
        if self.command == "GET" and split.path == MASTER_PATH:
            self.send(200, json.dumps(server.master).encode())
            return
        call = ROUTES.get((self.command, split.path))
        if call is None:
            server.violations.append(f"{self.command} {split.path}: no such route")
            self.send(404, b"Not Found", "text/plain")
            return
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        headers = self.record(call, body, raw).headers
        fault = server.take_fault(call)
        if self.answer_fault(fault):
            return
        refusal = server.check_headers(call, self.command, dict(headers))
        if refusal is None and self.command == "GET" and raw:
            refusal = server._violate(f"{call}: a GET with a body")
        if refusal is None and self.command == "POST" and not isinstance(body, dict):
            refusal = server._violate(f"{call}: the body is not a JSON object")
        if refusal is not None:
            if refusal.status == 401:
                answer = {"success": False, "message": refusal.message, "errorCode": refusal.code, "data": ""}
                self.send(401, _json(answer))
            else:
                self.send(refusal.status, _json(failure(refusal.message, refusal.code)))
            return
        try:
            data = server.login(body) if call == "login" else server.serve(call, body)
            payload = envelope(data)
        except Refusal as exc:
            payload = failure(exc.message, exc.code)
        if fault == "timeout":  # processed, and the answer never comes
            self.hang()
            return
        self.send(200, _json(payload))

    do_GET = do_POST = _handle

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        if fault == "http_500":
            return 500, b"<html><body>Internal Server Error</body></html>", "text/html"
        if fault == "malformed":
            return 200, b'{"unexpected": ["not", "the", "envelope"]}', "application/json"
        if fault == "truncated":
            whole = _json(envelope({"orderid": "261206000000999", "script": "RELIANCE-EQ"}))
            return 200, whole[: len(whole) // 2], "application/json"
        if fault == "rate_limited":
            return 403, b"Access denied because of exceeding access rate", "text/plain"
        if fault == "session_expired":
            answer = {"success": False, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}
            return 401, _json(answer), "application/json"
        if fault == "rejected":
            return 200, _json(failure(REJECT_MESSAGE, "AB2000")), "application/json"
        if fault == "timeout":
            return None
        raise AssertionError(fault)
