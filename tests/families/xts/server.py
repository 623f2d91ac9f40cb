"""A local XTS server for tests, written from the public SDK (symphonyfintech/xts-pythonclient-api-sdk:
Connect.py's routes and bodies, the socket clients' handshakes) and the XTS field names of
docs/brokers.md, "xts".

REST (``ThreadingHTTPServer`` on loopback): both sign-ins, orders, the books, positions, holdings,
the balance, quotes, market-data subscriptions and the instrument master, each answered in XTS's
envelope ``{"type", "code", "description", "result"}``. Every request is validated against the
documented format (the method and path, the ``authorization`` token of the right product, the body's
exact fields and their types and values, the query): a request out of format is answered with XTS's
"Bad Request" and recorded in ``violations``, which tests assert is empty. Every request is recorded
(``requests``) with the contract suite's name for its call.

The book is small and coherent: a MARKET order fills at once at the server's price (a trade in the
trade book, a position), a LIMIT or stop order rests ("New") until modified, cancelled or ``fill``ed.

Websockets (``websockets`` on loopback, a thread of its own): the market-data and interactive
Socket.IO endpoints, Engine.IO 3 framed (``0{...}`` open, ``40``, ``42[event, data]``, client pings
``2`` answered ``3``); the handshake query is validated (403 and a violation otherwise).

Faults (``fail_next(call, fault)``): http_500, timeout (processed, then no answer), malformed,
truncated, rate_limited (429), session_expired (400 "Invalid Token", as the SDK's
``XTSTokenException`` expects), rejected (400 with the broker's message).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Response, ServerConnection
from websockets.http11 import Request

from tests.brokers.contract.kit import REJECT_MESSAGE
from tests.brokers.local_server import LocalHandler, LocalServer, Stream

IST = ZoneInfo("Asia/Kolkata")
APP_KEY, SECRET_KEY = "a27e231381266f63c62157", "Akko754#C3xq"
MD_APP_KEY, MD_SECRET_KEY = "b31f2c5e7d9a0b1c2d3e4f", "Mdkk812#Q9zz"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.interactive-session.9f8e7d6c5b4a"
MD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.marketdata-session.1a2b3c4d5e6f"
USER_ID = "IIFL1234"
MD_USER_ID = "IIFL1234_856F2F2AF32542B7"
SEGMENTS = {"NSECM": 1, "NSEFO": 2, "NSECD": 3, "BSECM": 11, "BSEFO": 12, "MCXFO": 51}
PRODUCTS = {"MIS", "NRML", "CNC"}
ORDER_TYPES = {"MARKET": "Market", "LIMIT": "Limit", "STOPMARKET": "StopMarket", "STOPLIMIT": "StopLimit"}
MESSAGE_CODES = {1501, 1502, 1505, 1507, 1510, 1512}
EPOCH_1980_IST = 315_513_000
HANG_SECONDS = 3.0

PLACE_FIELDS = {
    "exchangeSegment", "exchangeInstrumentID", "productType", "orderType", "orderSide", "timeInForce",
    "disclosedQuantity", "orderQuantity", "limitPrice", "stopPrice", "apiOrderSource", "orderUniqueIdentifier",
}  # fmt: skip
MODIFY_FIELDS = {
    "appOrderID", "modifiedProductType", "modifiedOrderType", "modifiedOrderQuantity", "modifiedDisclosedQuantity",
    "modifiedLimitPrice", "modifiedStopPrice", "modifiedTimeInForce", "orderUniqueIdentifier",
}  # fmt: skip

# (method, path) -> the contract suite's name for the call; GET /interactive/orders with appOrderID
# is an order's history ("order_history").
ROUTES = {
    ("POST", "/interactive/user/session"): "login",
    ("POST", "/apimarketdata/auth/login"): "md_login",
    ("POST", "/interactive/orders"): "place",
    ("PUT", "/interactive/orders"): "modify",
    ("DELETE", "/interactive/orders"): "cancel",
    ("GET", "/interactive/orders"): "orders",
    ("GET", "/interactive/orders/trades"): "trades",
    ("GET", "/interactive/portfolio/positions"): "positions",
    ("GET", "/interactive/portfolio/holdings"): "holdings",
    ("GET", "/interactive/user/balance"): "funds",
    ("POST", "/apimarketdata/instruments/quotes"): "quote",
    ("POST", "/apimarketdata/instruments/subscription"): "subscribe",
    ("POST", "/apimarketdata/instruments/master"): "master",
}
MASTER_TEXT = "\n".join(
    [
        "NSECM|2885|8|RELIANCE|RELIANCE-EQ|EQ|RELIANCE-EQ|1100100002885|3189.6|2609.7|100001|0.05|1|1|RELIANCE"
        "|INE002A01018|1|1|RELIANCE INDUSTRIES LTD",
        "NSECM|1594|8|INFY|INFY-EQ|EQ|INFY-EQ|1100100001594|1980.1|1620.1|100001|0.05|1|1|INFY|INE009A01021|1|1"
        "|INFOSYS LIMITED",
        "NSEFO|35001|1|NIFTY|NIFTY24DECFUT|FUTIDX|NIFTY-FUTIDX|2120100035001|26000|22000|1801|0.1|75|1|26000"
        "|NIFTY 50|2024-12-26T14:30:00|0|-1|NIFTY 24DEC FUT",
    ]
)


JSON = "application/json; charset=utf-8"


class Violation(ValueError):
    pass


def _now_text() -> str:
    return datetime.now(IST).strftime("%d-%m-%Y %H:%M:%S")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=lambda v: float(v) if isinstance(v, Decimal) else str(v))


def envelope(result: Any, description: str = "ok") -> bytes:
    return _dumps({"type": "success", "code": "s-app-0001", "description": description, "result": result}).encode()


def error(code: str, description: str, result: Any = None) -> bytes:
    return _dumps({"type": "error", "code": code, "description": description, "result": result or {}}).encode()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, Decimal)


class XtsServer(LocalServer):
    """See the module docstring. ``start()`` it, ``stop()`` it (which raises AssertionError if any
    request was out of the documented format)."""

    name = "XTS"
    documented = "XTS's documented format"
    hang_seconds = HANG_SECONDS

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.trades: list[dict[str, Any]] = []
        self.market: dict[tuple[int, int], Decimal] = {(1, 2885): Decimal("1000.05"), (1, 1594): Decimal("1500.5")}
        self.master_text = MASTER_TEXT
        self.investor = True
        self._ids = itertools.count(1000000101)
        self._executions = itertools.count(50000001)

    def handler_class(self) -> type[LocalHandler]:
        return _Handler

    def endpoints(self) -> dict[str, str]:
        return {"api": self.url, "ws": self.ws_url, "order_ws": self.ws_url, "master": self.url}

    # --- what tests use -----------------------------------------------------------------------------
    def fill(self, broker_order_id: str, price: Decimal) -> None:
        with self._lock:
            self._fill(self.orders[broker_order_id], Decimal(price))

    def push_order_update(self, broker_order_id: str) -> None:
        with self._lock:
            order = dict(self.orders[broker_order_id])
            trades = [dict(t) for t in self.trades if t["AppOrderID"] == order["AppOrderID"]]
        for trade in trades:
            self.send_all(f"42{json.dumps(['trade', _dumps(trade)])}", "orders")
        self.send_all(f"42{json.dumps(['order', _dumps(order)])}", "orders")
        return None

    def push_tick(self, token: str, ltp: Decimal) -> None:
        segment, instrument = (int(part) for part in token.split("_"))
        self.send_all(tick_frame(segment, instrument, Decimal(ltp)), "market")

    def push_raw(self, message: str | bytes) -> None:
        self.send_all(message, "market")

    # --- REST ----------------------------------------------------------------------------------------

    def handle(self, call: str, method: str, query: dict[str, str], headers: dict[str, str], body: Any):
        """(status, body) for one request already recorded; raises Violation for one out of format."""
        if call in ("login", "md_login"):
            return 200, envelope(self._login(call, body))
        self._check_token(call, headers)
        handler = getattr(self, f"_on_{call}")
        return 200, envelope(handler(query, body))

    def _login(self, call: str, body: Any) -> dict[str, Any]:
        _fields(body, {"appKey", "secretKey", "source"})
        if body["source"] != "WEBAPI":
            raise Violation("source is WEBAPI")
        keys = (APP_KEY, SECRET_KEY) if call == "login" else (MD_APP_KEY, MD_SECRET_KEY)
        if (body["appKey"], body["secretKey"]) != keys:
            raise _Refusal(400, error("e-user-0002", "Invalid appKey or secretKey"))
        if call == "login":
            return {"enums": {}, "clientCodes": [USER_ID], "isInvestorClient": self.investor, "token": TOKEN,
                    "userID": USER_ID}  # fmt: skip
        return {
            "enums": {},
            "token": MD_TOKEN,
            "userID": MD_USER_ID,
            "appVersion": "1.0",
            "application_expiry_date": "",
        }

    def _check_token(self, call: str, headers: dict[str, str]) -> None:
        market = call in ("quote", "subscribe", "master")
        token = headers.get("authorization", "")
        if call == "master" and not token:
            return
        if token != (MD_TOKEN if market else TOKEN):
            raise Violation(
                f"{call}: the authorization header is not the {'market-data' if market else 'interactive'} token"
            )
        if headers.get("content-type", "application/json").split(";")[0] != "application/json":
            raise Violation(f"{call}: content-type is application/json")

    def _client(self, fields: dict[str, Any]) -> None:
        if "clientID" in fields and (self.investor or not isinstance(fields["clientID"], str)):
            raise Violation("clientID is sent only by a dealer's session, as text")
        if not self.investor and fields.get("clientID") != USER_ID:
            raise Violation("a dealer's session names the client in clientID")

    def _on_place(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(body, PLACE_FIELDS, optional={"clientID"})
        self._client(body)
        segment, instrument = body["exchangeSegment"], body["exchangeInstrumentID"]
        if segment not in SEGMENTS or not _is_int(instrument) or instrument <= 0:
            raise Violation("exchangeSegment is a segment name, exchangeInstrumentID a positive integer")
        if body["productType"] not in PRODUCTS or body["orderType"] not in ORDER_TYPES:
            raise Violation("productType or orderType out of the documented values")
        if body["orderSide"] not in ("BUY", "SELL") or body["timeInForce"] not in ("DAY", "IOC"):
            raise Violation("orderSide is BUY/SELL, timeInForce DAY/IOC")
        _quantities(body["orderQuantity"], body["disclosedQuantity"])
        _prices(body["orderType"], body["limitPrice"], body["stopPrice"])
        tag = body["orderUniqueIdentifier"]
        if not isinstance(tag, str) or not 0 < len(tag) <= 20 or not isinstance(body["apiOrderSource"], str):
            raise Violation("orderUniqueIdentifier is text of 1 to 20 characters, apiOrderSource text")
        with self._lock:
            app_order_id = next(self._ids)
            order = {
                "LoginID": USER_ID, "ClientID": USER_ID, "AppOrderID": app_order_id, "OrderReferenceID": "",
                "GeneratedBy": "TWSAPI", "ExchangeOrderID": "", "OrderCategoryType": "NORMAL",
                "ExchangeSegment": segment, "ExchangeInstrumentID": instrument, "OrderSide": body["orderSide"],
                "OrderType": ORDER_TYPES[body["orderType"]], "ProductType": body["productType"],
                "TimeInForce": body["timeInForce"], "OrderPrice": body["limitPrice"],
                "OrderQuantity": body["orderQuantity"], "OrderStopPrice": body["stopPrice"],
                "OrderStatus": "New", "OrderAverageTradedPrice": "", "LeavesQuantity": body["orderQuantity"],
                "CumulativeQuantity": 0, "OrderDisclosedQuantity": body["disclosedQuantity"],
                "OrderGeneratedDateTime": _now_text(), "ExchangeTransactTime": _now_text(),
                "LastUpdateDateTime": _now_text(), "CancelRejectReason": "",
                "OrderUniqueIdentifier": tag, "OrderLegStatus": "SingleOrderLeg", "ExecutionID": "",
                "LastTradedPrice": 0, "LastTradedQuantity": 0, "LastExecutionTransactTime": "",
                "MessageCode": 9004, "MessageVersion": 4, "TokenID": 0, "ApplicationType": 146, "SequenceNumber": 0,
            }  # fmt: skip
            self.orders[str(app_order_id)] = order
            self.history[str(app_order_id)].append(dict(order, OrderStatus="PendingNew"))
            self.history[str(app_order_id)].append(dict(order))
            if body["orderType"] == "MARKET":
                self._fill(order, self.market.get((SEGMENTS[segment], instrument), Decimal("100")))
        return {"AppOrderID": app_order_id, "OrderUniqueIdentifier": tag, "ClientID": USER_ID}

    def _on_modify(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(body, MODIFY_FIELDS, optional={"clientID"})
        self._client(body)
        if not _is_int(body["appOrderID"]):
            raise Violation("appOrderID is an integer")
        if body["modifiedProductType"] not in PRODUCTS or body["modifiedOrderType"] not in ORDER_TYPES:
            raise Violation("modifiedProductType or modifiedOrderType out of the documented values")
        if body["modifiedTimeInForce"] not in ("DAY", "IOC") or not isinstance(body["orderUniqueIdentifier"], str):
            raise Violation("modifiedTimeInForce is DAY/IOC, orderUniqueIdentifier text")
        _quantities(body["modifiedOrderQuantity"], body["modifiedDisclosedQuantity"])
        _prices(body["modifiedOrderType"], body["modifiedLimitPrice"], body["modifiedStopPrice"])
        with self._lock:
            order = self._resting(str(body["appOrderID"]))
            order.update(
                OrderType=ORDER_TYPES[body["modifiedOrderType"]], OrderQuantity=body["modifiedOrderQuantity"],
                LeavesQuantity=body["modifiedOrderQuantity"] - order["CumulativeQuantity"],
                OrderPrice=body["modifiedLimitPrice"], OrderStopPrice=body["modifiedStopPrice"],
                ProductType=body["modifiedProductType"], TimeInForce=body["modifiedTimeInForce"],
                LastUpdateDateTime=_now_text(),
            )  # fmt: skip
            self.history[str(order["AppOrderID"])].append(dict(order, OrderStatus="Replaced"))
            self.history[str(order["AppOrderID"])].append(dict(order))
        return {"AppOrderID": order["AppOrderID"]}

    def _on_cancel(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(query, {"appOrderID", "orderUniqueIdentifier"}, optional={"clientID"})
        self._client(query)
        if body is not None or not query["appOrderID"].isdigit():
            raise Violation("a cancel carries appOrderID (digits) in the query and no body")
        with self._lock:
            order = self._resting(query["appOrderID"])
            if query["orderUniqueIdentifier"] != order["OrderUniqueIdentifier"]:
                raise Violation("orderUniqueIdentifier is not the order's")
            order.update(OrderStatus="Cancelled", LeavesQuantity=0, LastUpdateDateTime=_now_text())
            self.history[query["appOrderID"]].append(dict(order))
        return {"AppOrderID": order["AppOrderID"]}

    def _on_orders(self, query: dict[str, str], body: Any) -> list[dict[str, Any]]:
        _fields(query, set(), optional={"clientID", "appOrderID"})
        self._client(query)
        with self._lock:
            if "appOrderID" in query:
                history = self.history.get(query["appOrderID"])
                if history is None:
                    raise _Refusal(400, error("e-orders-0012", "Order not found"))
                return [dict(state) for state in history]
            return [dict(order) for order in self.orders.values()]

    def _on_trades(self, query: dict[str, str], body: Any) -> list[dict[str, Any]]:
        _fields(query, set(), optional={"clientID"})
        self._client(query)
        with self._lock:
            return [dict(trade) for trade in self.trades]

    def _on_positions(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(query, {"dayOrNet"}, optional={"clientID"})
        self._client(query)
        if query["dayOrNet"] not in ("DayWise", "NetWise"):
            raise Violation("dayOrNet is DayWise or NetWise")
        net: dict[tuple[str, int, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
        with self._lock:
            for trade in self.trades:
                key = (trade["ExchangeSegment"], trade["ExchangeInstrumentID"], trade["ProductType"])
                buy = trade["OrderSide"] == "BUY"
                quantity, price = Decimal(trade["LastTradedQuantity"]), Decimal(str(trade["LastTradedPrice"]))
                row = net[key]
                row[0 if buy else 2] += quantity
                row[1 if buy else 3] += quantity * price
        positions = []
        for (segment, instrument, product), (bought, buy_value, sold, sell_value) in net.items():
            positions.append(
                {
                    "AccountID": USER_ID,
                    "TradingSymbol": "",
                    "ExchangeSegment": segment,
                    "ExchangeInstrumentId": instrument,
                    "ProductType": product,
                    "Marketlot": "1",
                    "Multiplier": "1",
                    "BuyAveragePrice": str(buy_value / bought if bought else 0),
                    "SellAveragePrice": str(sell_value / sold if sold else 0),
                    "OpenBuyQuantity": str(bought),
                    "OpenSellQuantity": str(sold),
                    "Quantity": str(bought - sold),
                    "NetAmount": str(sell_value - buy_value),
                }
            )
        return {"positionList": positions}

    def _on_holdings(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(query, set(), optional={"clientID"})
        self._client(query)
        holding = {
            "ISIN": "INE002A01018", "HoldingQuantity": 5, "UsedHoldingQuantity": 0, "ExchangeNSEInstrumentId": 2885,
            "ExchangeBSEInstrumentId": 500325, "BuyAvgPrice": 950.5, "CreatedOn": "2024-01-01T00:00:00",
        }  # fmt: skip
        return {"RMSHoldings": {"ClientId": USER_ID, "Holdings": {"INE002A01018": holding}}}

    def _on_funds(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(query, set(), optional={"clientID"})
        self._client(query)
        limits = {
            "netMarginAvailable": "99500.5", "marginUtilized": "500", "cashAvailable": "100000.5",
            "collateral": 0, "UnrealizedMTM": 0, "RealizedMTM": 0,
        }  # fmt: skip
        return {"BalanceList": [{"limitHeader": "ALL|ALL|ALL", "limitObject": {"RMSSubLimits": limits}}]}

    def _instruments(self, body: Any) -> list[tuple[int, int]]:
        instruments = body["instruments"]
        if not isinstance(instruments, list) or not instruments:
            raise Violation("instruments is a non-empty list")
        out = []
        for item in instruments:
            _fields(item, {"exchangeSegment", "exchangeInstrumentID"})
            segment, instrument = item["exchangeSegment"], item["exchangeInstrumentID"]
            if segment not in SEGMENTS.values() or not _is_int(instrument) or instrument <= 0:
                raise Violation("an instrument is {exchangeSegment: its number, exchangeInstrumentID: an integer}")
            out.append((segment, instrument))
        if body["xtsMessageCode"] not in MESSAGE_CODES:
            raise Violation("xtsMessageCode is a documented message code")
        return out

    def _on_quote(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(body, {"instruments", "xtsMessageCode", "publishFormat"})
        if body["publishFormat"] not in ("JSON", "Binary"):
            raise Violation("publishFormat is JSON or Binary")
        instruments = self._instruments(body)
        quotes = [tick_payload(s, i, self.market.get((s, i), Decimal("100"))) for s, i in instruments]
        return {
            "mdp": body["xtsMessageCode"],
            "quotesList": body["instruments"],
            "listQuotes": [_dumps(q) for q in quotes],
        }

    def _on_subscribe(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        _fields(body, {"instruments", "xtsMessageCode"})
        instruments = self._instruments(body)
        with self._lock:
            self.subscriptions.append(body)
        quotes = [tick_payload(s, i, self.market.get((s, i), Decimal("100"))) for s, i in instruments]
        return {
            "mdp": body["xtsMessageCode"],
            "quotesList": body["instruments"],
            "listQuotes": [_dumps(q) for q in quotes],
        }

    def _on_master(self, query: dict[str, str], body: Any) -> str:
        _fields(body, {"exchangeSegmentList"})
        segments = body["exchangeSegmentList"]
        if not isinstance(segments, list) or not segments or any(s not in SEGMENTS for s in segments):
            raise Violation("exchangeSegmentList is a list of segment names")
        return "\n".join(line for line in self.master_text.split("\n") if line.split("|")[0] in segments)

    # --- the book -----------------------------------------------------------------------------------
    def _resting(self, app_order_id: str) -> dict[str, Any]:
        order = self.orders.get(app_order_id)
        if order is None:
            raise _Refusal(400, error("e-orders-0012", "Order not found"))
        if order["OrderStatus"] not in ("New", "PartiallyFilled"):
            raise _Refusal(400, error("e-orders-0010", f"Order is already {order['OrderStatus']}"))
        return order

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        quantity = order["LeavesQuantity"]
        execution = str(next(self._executions))
        now = _now_text()
        order.update(
            OrderStatus="Filled", LeavesQuantity=0, CumulativeQuantity=order["OrderQuantity"],
            OrderAverageTradedPrice=str(price), LastTradedPrice=price, LastTradedQuantity=quantity,
            ExecutionID=execution, LastExecutionTransactTime=now, LastUpdateDateTime=now,
            ExchangeOrderID=f"11000000{order['AppOrderID']}",
        )  # fmt: skip
        self.trades.append(dict(order))
        self.history[str(order["AppOrderID"])].append(dict(order))

    # --- the sockets --------------------------------------------------------------------------------
    def ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        expected: dict[str, str]
        if parts.path == "/apimarketdata/socket.io/":
            expected = {"token": MD_TOKEN, "userID": MD_USER_ID, "publishFormat": "JSON", "broadcastMode": "Full"}
        elif parts.path == "/interactive/socket.io/":
            expected = {"token": TOKEN, "userID": USER_ID, "apiType": "INTERACTIVE"}
        else:
            self.violation(f"websocket path {parts.path!r} is not an XTS socket")
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        expected = {**expected, "EIO": "3", "transport": "websocket"}
        if query != expected:
            self.violation(f"socket handshake query {sorted(query)} is not {sorted(expected)}")
            return connection.respond(HTTPStatus.FORBIDDEN, "bad handshake\n")
        return None

    def stream_for(self, socket: ServerConnection) -> Stream:
        assert socket.request is not None
        kind = "market" if urlsplit(socket.request.path).path.startswith("/apimarketdata") else "orders"
        return Stream(socket=socket, kind=kind)

    async def on_connect(self, stream: Stream) -> None:
        """Engine.IO's open packet and Socket.IO's connect; the interactive socket's ``joined``."""
        await stream.socket.send('0{"sid":"x1","upgrades":[],"pingInterval":25000,"pingTimeout":60000}')
        await stream.socket.send("40")
        if stream.kind == "orders":
            await stream.socket.send(f"42{json.dumps(['joined', 'Interactive socket joined'])}")

    async def on_message(self, stream: Stream, message: str | bytes) -> None:
        if message == "2":
            await stream.socket.send("3")
        else:
            self.violation(f"the client sent {str(message)[:40]!r} on the {stream.kind} socket")


class _Refusal(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body


def _fields(body: Any, required: set[str], *, optional: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    if not isinstance(body, dict):
        raise Violation("the body is a JSON object")
    missing, extra = required - body.keys(), body.keys() - required - optional
    if missing or extra:
        raise Violation(f"fields missing {sorted(missing)}, unknown {sorted(extra)}")


def _quantities(quantity: Any, disclosed: Any) -> None:
    if not _is_int(quantity) or quantity <= 0 or not _is_int(disclosed) or not 0 <= disclosed <= quantity:
        raise Violation("a quantity is a positive integer, the disclosed quantity an integer up to it")


def _prices(order_type: str, limit: Any, stop: Any) -> None:
    if not _is_number(limit) or not _is_number(stop) or limit < 0 or stop < 0:
        raise Violation("limitPrice and stopPrice are non-negative numbers")
    if (limit > 0) != (order_type in ("LIMIT", "STOPLIMIT")) or (stop > 0) != order_type.startswith("STOP"):
        raise Violation(f"{order_type}: a limit price only with LIMIT/STOPLIMIT, a stop price only with STOP types")


def tick_payload(segment: int, instrument: int, ltp: Decimal) -> dict[str, Any]:
    """A 1501 touchline message, as XTS's market-data socket and quotes send it."""
    stamp = int(time.time()) - EPOCH_1980_IST
    return {
        "MessageCode": 1501, "MessageVersion": 4, "ApplicationType": 0, "TokenID": 0,
        "ExchangeSegment": segment, "ExchangeInstrumentID": instrument, "ExchangeTimeStamp": stamp,
        "Touchline": {
            "BidInfo": {"Size": 100, "Price": ltp - Decimal("0.05"), "TotalOrders": 3, "BuyBackMarketMaker": 0},
            "AskInfo": {"Size": 50, "Price": ltp + Decimal("0.05"), "TotalOrders": 2, "BuyBackMarketMaker": 0},
            "LastTradedPrice": ltp, "LastTradedQunatity": 10, "TotalBuyQuantity": 1000, "TotalSellQuantity": 900,
            "TotalTradedQuantity": 123456, "AverageTradedPrice": ltp, "LastTradedTime": stamp, "LastUpdateTime": stamp,
            "PercentChange": 0.5, "Open": ltp, "High": ltp, "Low": ltp, "Close": ltp, "TotalValueTraded": None,
            "BuyBackTotalBuy": 0, "BuyBackTotalSell": 0,
        },
        "BookType": 1, "XMarketType": 1, "SequenceNumber": 1,
    }  # fmt: skip


def tick_frame(segment: int, instrument: int, ltp: Decimal) -> str:
    """The Socket.IO event packet of a 1501 full message (its data a JSON text, as XTS sends it)."""
    return "42" + json.dumps(["1501-json-full", _dumps(tick_payload(segment, instrument, ltp))])


class _Handler(LocalHandler):
    local: XtsServer

    def _serve(self) -> None:
        server, method = self.local, self.command
        parts = urlsplit(self.path)
        raw = self.read_body()
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = self.header_map()
        call = ROUTES.get((method, parts.path), "unknown")
        if call == "orders" and "appOrderID" in query:
            call = "order_history"
        body: Any = None
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            body = raw
        self.record(call, body, raw, query=query)
        fault = server.take_fault(call)
        if self.answer_fault(fault):
            return None
        try:
            if call == "unknown":
                raise Violation(f"{method} {parts.path} is not an XTS route")
            if raw and not isinstance(body, dict):
                raise Violation("the body is a JSON object")
            status, answer = server.handle(call if call != "order_history" else "orders", method, query, headers, body)
        except Violation as violation:
            server.violation(f"{call}: {violation}")
            return self._answer(400, error("e-app-0005", "Bad Request", {"errors": [str(violation)]}))
        except _Refusal as refusal:
            status, answer = refusal.status, refusal.body
        if fault == "timeout":
            self.hang()
            return None
        if fault == "malformed":
            return self._answer(200, b'{"status": "ok", "data": []}')
        if fault == "truncated":
            return self._answer(200, answer[: len(answer) // 2])
        return self._answer(status, answer)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        """XTS's error for a fault answered in place of serving ("timeout", "malformed", "truncated" serve)."""
        answers = {
            "http_500": (500, error("e-app-0001", "Internal Server Error")),
            "rate_limited": (429, error("e-apirl-0001", "Rate limit exceeded")),
            "session_expired": (400, error("e-session-0007", "Invalid Token")),
            "rejected": (400, error("e-orders-0005", REJECT_MESSAGE)),
        }
        if fault not in answers:
            return None
        status, body = answers[fault]
        return status, body, JSON

    def _answer(self, status: int, body: bytes) -> None:
        self.send(status, body, JSON)

    def send(self, status: int, body: bytes, content_type: str = JSON) -> None:
        # XTS's servers name their headers in lower case.
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
