"""A local DhanHQ v2 server for tests, on loopback only, written from the public documentation.

REST (``/v2/...``) and the token host (``/app/generateAccessToken``) on one ThreadingHTTPServer; the
market feed and the order-update websockets on one ``websockets`` event loop in a thread. It checks
every request against the documented format (``wire_format``): a request it would not accept is
answered with Dhan's DH-905 input error AND recorded in ``violations``, which tests assert is empty.
It records every request (``requests``, as the contract suite's ``Recorded``) and keeps a small
coherent book: a MARKET order fills at once at the market price, a LIMIT or stop order rests PENDING
until modified, cancelled or filled on demand (``fill``). Faults on demand (``fail_next``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from websockets.asyncio.server import Response, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from brokers.families.login import totp_now
from tests.brokers.contract.kit import REJECT_MESSAGE, Recorded
from tests.brokers.local_server import LocalHandler, LocalServer, Stream
from tests.families.dhan import wire_format as wf

CLIENT_ID = "1100003626"
PIN = "482916"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.dhan-test-token.sig"
STAMP = "2026-12-07 09:15:00"
MASTER_CSV = (
    "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,SEM_TRADING_SYMBOL,"
    "SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE,SEM_TICK_SIZE,"
    "SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,SM_SYMBOL_NAME\n"
    "NSE,E,2885,EQUITY,,RELIANCE,1.0,Reliance Industries,,,,10.0000,NA,ES,EQ,RELIANCE INDUSTRIES LTD\n"
    "NSE,E,1594,EQUITY,,INFY,1.0,Infosys,,,,5.0000,NA,ES,EQ,INFOSYS LIMITED\n"
    "NSE,I,13,INDEX,,NIFTY,1.0,Nifty 50,,,,0.0000,NA,INDEX,,NIFTY 50\n"
    "NSE,D,48225,OPTIDX,0,NIFTY-Dec2026-24000-CE,75.0,NIFTY 31 DEC 24000 CALL,2026-12-31 14:30:00,"
    "24000.00000,CE,5.0000,M,OP,,\n"
    "BSE,E,500325,EQUITY,,RELIANCE,1.0,Reliance Industries,,,,5.0000,NA,ES,A,RELIANCE INDUSTRIES LTD\n"
)

ERRORS = {
    "http_500": (500, "Internal_Server_Error", "DH-908", "Server was not able to process API request."),
    "rate_limited": (429, "Rate_Limit", "DH-904", "Too many requests on server from single user."),
    "session_expired": (401, "Invalid_Authentication", "DH-901", "Client ID or access token is invalid or expired."),
    "rejected": (400, "Order_Error", "DH-906", REJECT_MESSAGE),
}


class DhanError(Exception):
    def __init__(self, status: int, error_type: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.body = status, _error_body(error_type, code, message)


def _error_body(error_type: str, code: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorCode": code, "errorMessage": message}).encode()


def _json(value: Any) -> bytes:
    return json.dumps(value, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)).encode()


class DhanServer(LocalServer):
    """See the module docstring: the market feed and the order updates on websocket listeners of their
    own ("market", "orders"), as Dhan serves them from two hosts."""

    name = "Dhan"
    listeners = ("market", "orders")
    hang_seconds = 8.0

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.market: dict[tuple[str, str], Decimal] = {
            ("NSE_EQ", "2885"): Decimal("2900.1"),
            ("NSE_EQ", "1594"): Decimal("1500.5"),
        }
        self.master_csv = MASTER_CSV
        self.token_valid = True
        self._ids = itertools.count(112111182198)
        self._trade_ids = itertools.count(50000001)

    def handler_class(self) -> type[LocalHandler]:
        return _Handler

    @property
    def order_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_ports['orders']}"

    def endpoints(self) -> dict[str, str]:
        return {
            "api": f"{self.url}/v2",
            "auth": self.url,
            "ws": self.ws_url,
            "order_ws": self.order_ws_url,
            "master": f"{self.url}/api-data/api-scrip-master.csv",
        }

    # --- what tests call ------------------------------------------------------------------------
    def fill(self, broker_order_id: str, price: Decimal) -> None:
        with self._lock:
            self._fill(self.orders[broker_order_id], price)

    def cancel_at_exchange(self, broker_order_id: str) -> None:
        with self._lock:
            self._set(self.orders[broker_order_id], orderStatus="CANCELLED")

    def order_alert(self, broker_order_id: str) -> dict[str, Any]:
        """The order's current state as the order-update stream's message."""
        with self._lock:
            o = dict(self.orders[broker_order_id])
        short = {"LIMIT": "LMT", "MARKET": "MKT", "STOP_LOSS": "SL", "STOP_LOSS_MARKET": "SLM"}
        segment = o["exchangeSegment"]
        return {
            "Type": "order_alert",
            "Data": {
                "exchange": segment.split("_")[0],
                "segment": {"EQ": "E", "FNO": "D", "CURRENCY": "C", "COMM": "M"}.get(segment.split("_")[1], "E"),
                "source": "P",
                "securityId": o["securityId"],
                "clientId": CLIENT_ID,
                "exchOrderNo": o["exchangeOrderId"],
                "orderNo": o["orderId"],
                "product": {"CNC": "C", "INTRADAY": "I", "MARGIN": "M"}.get(o["productType"], "C"),
                "txnType": o["transactionType"][0],
                "orderType": short[o["orderType"]],
                "validity": o["validity"],
                "quantity": o["quantity"],
                "tradedQty": o["filledQty"],
                "remainingQuantity": o["remainingQuantity"],
                "price": o["price"],
                "triggerPrice": o["triggerPrice"],
                "avgTradedPrice": o["averageTradedPrice"],
                "orderDateTime": o["createTime"],
                "lastUpdatedTime": o["updateTime"],
                "remarks": "NA",
                "reasonDescription": o["omsErrorDescription"] or "CONFIRMED",
                "status": o["orderStatus"],
                "symbol": o["tradingSymbol"],
                "correlationId": o["correlationId"],
            },
        }

    def push_order_update(self, broker_order_id: str) -> None:
        self.send_all(json.dumps(self.order_alert(broker_order_id), default=float), _signed_in)
        return None

    def push_tick(self, token: str, ltp: Decimal) -> None:
        segment, _, security_id = token.partition(":")
        self.push_raw(wf.ticker_packet(segment, int(security_id), ltp))

    def push_raw(self, message: str | bytes) -> None:
        self.send_all(message, "market")

    # --- REST -----------------------------------------------------------------------------------
    def refuse(self, recorded: Recorded, problems: list[str]) -> DhanError:
        """Dhan's DH-905 input error for a request that broke the documented format (a violation)."""
        with self._lock:
            self.violations.extend(f"{recorded.method} {recorded.path}: {p}" for p in problems)
        return DhanError(400, "Input_Exception", "DH-905", "; ".join(problems)[:300])

    def route(self, method: str, path: str) -> tuple[str, Callable[..., Any] | None, tuple[str, ...]] | None:
        parts = [p for p in path.split("/") if p]
        table: list[tuple[str, tuple[str, ...], str, Callable[..., Any] | None]] = [
            ("POST", ("app", "generateAccessToken"), "login", self._login),
            ("GET", ("v2", "profile"), "profile", self._profile),
            ("POST", ("v2", "orders"), "place", self._place),
            ("PUT", ("v2", "orders", "*"), "modify", self._modify),
            ("DELETE", ("v2", "orders", "*"), "cancel", self._cancel),
            ("GET", ("v2", "orders"), "orders", lambda r: list(self.orders.values())),
            ("GET", ("v2", "orders", "external", "*"), "orders", self._order_by_tag),
            ("GET", ("v2", "trades"), "trades", lambda r: list(self.trades)),
            ("GET", ("v2", "trades", "*"), "trades", self._order_trades),
            ("GET", ("v2", "positions"), "positions", self._positions),
            ("GET", ("v2", "holdings"), "holdings", lambda r: [_holding()]),
            ("GET", ("v2", "fundlimit"), "funds", lambda r: _funds()),
            ("POST", ("v2", "marketfeed", "quote"), "quote", self._quote),
            ("GET", ("api-data", "api-scrip-master.csv"), "master", None),
        ]
        for route_method, pattern, call, handler in table:
            if (
                route_method == method
                and len(pattern) == len(parts)
                and all(p == "*" or p == part for p, part in zip(pattern, parts, strict=True))
            ):
                args = tuple(part for p, part in zip(pattern, parts, strict=True) if p == "*")
                return call, handler, args
        return None

    def serve(self, recorded: Recorded, handler: Callable[..., Any], args: tuple[str, ...]) -> bytes:
        if recorded.call not in {"login", "master"}:
            problems = []
            if recorded.headers.get("client-id") != CLIENT_ID:
                problems.append("the client-id header is missing or not the client's")
            if not recorded.headers.get("access-token"):
                problems.append("the access-token header is missing")
            if problems:
                raise self.refuse(recorded, problems)
            if recorded.headers.get("access-token") != ACCESS_TOKEN or not self.token_valid:
                raise DhanError(401, *ERRORS["session_expired"][1:])
        with self._lock:
            return _json(handler(recorded, *args))

    def _login(self, recorded: Recorded) -> dict[str, Any]:
        query = dict(recorded.query)
        problems = [f"{name} is missing" for name in ("dhanClientId", "pin", "totp") if not query.get(name)]
        if problems or recorded.body not in (None, b"", {}):
            raise self.refuse(recorded, problems or ["the token request has no body"])
        now = time.time()
        codes = {totp_now(TOTP_SECRET, at=now + step) for step in (-30, 0, 30)}
        if query["dhanClientId"] != CLIENT_ID or query["pin"] != PIN or query["totp"] not in codes:
            raise DhanError(400, "Invalid_Authentication", "DH-905", "Invalid Client ID, PIN or TOTP")
        return {
            "dhanClientId": CLIENT_ID,
            "dhanClientName": "TEST TRADER",
            "dhanClientUcc": "ABCD12345E",
            "givenPowerOfAttorney": True,
            "accessToken": ACCESS_TOKEN,
            "expiryTime": "2099-12-31T09:15:00.000",
        }

    def _profile(self, recorded: Recorded) -> dict[str, Any]:
        return {
            "dhanClientId": CLIENT_ID,
            "tokenValidity": "31/12/2099 09:15",
            "activeSegment": "Equity, Derivative, Currency, Commodity",
            "ddpi": "Active",
            "mtf": "Active",
            "dataPlan": "Active",
            "dataValidity": "2099-12-31 00:00:00.0",
        }

    def _place(self, recorded: Recorded) -> dict[str, Any]:
        body = recorded.body
        problems = wf.check_place(body, CLIENT_ID)
        if problems:
            raise self.refuse(recorded, problems)
        order_id = str(next(self._ids))
        order = {
            "dhanClientId": CLIENT_ID,
            "orderId": order_id,
            "exchangeOrderId": "",
            "correlationId": body.get("correlationId", ""),
            "orderStatus": "TRANSIT",
            "transactionType": body["transactionType"],
            "exchangeSegment": body["exchangeSegment"],
            "productType": body["productType"],
            "orderType": body["orderType"],
            "validity": body["validity"],
            "tradingSymbol": "RELIANCE" if body["securityId"] == "2885" else "",
            "securityId": body["securityId"],
            "quantity": body["quantity"],
            "disclosedQuantity": body.get("disclosedQuantity", 0),
            "price": body.get("price", 0),
            "triggerPrice": body.get("triggerPrice", 0),
            "afterMarketOrder": body.get("afterMarketOrder", False),
            "boProfitValue": 0,
            "boStopLossValue": 0,
            "legName": "ENTRY_LEG",
            "createTime": STAMP,
            "updateTime": STAMP,
            "exchangeTime": STAMP,
            "drvExpiryDate": None,
            "drvOptionType": None,
            "drvStrikePrice": 0,
            "omsErrorCode": None,
            "omsErrorDescription": None,
            "algoId": "",
            "remainingQuantity": body["quantity"],
            "averageTradedPrice": 0,
            "filledQty": 0,
        }
        self.orders[order_id] = order
        self._set(order, orderStatus="PENDING", exchangeOrderId=f"1100000{order_id[-9:]}")
        if body["orderType"] == "MARKET":
            self._fill(order, self.market.get((body["exchangeSegment"], body["securityId"]), Decimal("100")))
        return {"orderId": order_id, "orderStatus": "TRANSIT"}

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise DhanError(400, "Order_Error", "DH-906", "Invalid Order Id")
        return order

    def _modify(self, recorded: Recorded, order_id: str) -> dict[str, Any]:
        problems = wf.check_modify(recorded.body, CLIENT_ID, order_id)
        if problems:
            raise self.refuse(recorded, problems)
        order = self._order(order_id)
        if order["orderStatus"] not in {"PENDING", "PART_TRADED"}:
            raise DhanError(400, "Order_Error", "DH-906", f"Order is {order['orderStatus']} and cannot be modified")
        body = recorded.body
        self._set(
            order,
            orderType=body["orderType"],
            quantity=body["quantity"],
            price=body["price"],
            triggerPrice=body["triggerPrice"],
            remainingQuantity=body["quantity"] - order["filledQty"],
        )
        return {"orderId": order_id, "orderStatus": "TRANSIT"}

    def _cancel(self, recorded: Recorded, order_id: str) -> dict[str, Any]:
        if recorded.body not in (None, b""):
            raise self.refuse(recorded, ["a cancellation has no body"])
        order = self._order(order_id)
        if order["orderStatus"] not in {"PENDING", "PART_TRADED"}:
            raise DhanError(400, "Order_Error", "DH-906", f"Order is {order['orderStatus']} and cannot be cancelled")
        self._set(order, orderStatus="CANCELLED")
        return {"orderId": order_id, "orderStatus": "CANCELLED"}

    def _order_by_tag(self, recorded: Recorded, tag: str) -> dict[str, Any]:
        for order in self.orders.values():
            if order["correlationId"] == tag:
                return order
        raise DhanError(400, "Data_Error", "DH-907", "No data present")

    def _order_trades(self, recorded: Recorded, order_id: str) -> list[dict[str, Any]]:
        self._order(order_id)
        return [t for t in self.trades if t["orderId"] == order_id]

    def _positions(self, recorded: Recorded) -> list[dict[str, Any]]:
        net: dict[tuple[str, str, str], list[Any]] = {}
        for t in self.trades:
            key = (t["exchangeSegment"], t["securityId"], t["productType"])
            row = net.setdefault(key, [0, Decimal(0), 0, Decimal(0)])
            if t["transactionType"] == "BUY":
                row[0] += t["tradedQuantity"]
                row[1] += t["tradedQuantity"] * t["tradedPrice"]
            else:
                row[2] += t["tradedQuantity"]
                row[3] += t["tradedQuantity"] * t["tradedPrice"]
        return [
            {
                "dhanClientId": CLIENT_ID,
                "tradingSymbol": "RELIANCE",
                "securityId": security_id,
                "positionType": "LONG" if buy > sell else "SHORT" if sell > buy else "CLOSED",
                "exchangeSegment": segment,
                "productType": product,
                "buyAvg": (buy_value / buy) if buy else 0,
                "buyQty": buy,
                "sellAvg": (sell_value / sell) if sell else 0,
                "sellQty": sell,
                "netQty": buy - sell,
                "costPrice": 0,
                "realizedProfit": 0,
                "unrealizedProfit": 0,
                "multiplier": 1,
            }
            for (segment, security_id, product), (buy, buy_value, sell, sell_value) in net.items()
        ]

    def _quote(self, recorded: Recorded) -> dict[str, Any]:
        problems = wf.check_quote(recorded.body, CLIENT_ID)
        if problems:
            raise self.refuse(recorded, problems)
        data: dict[str, dict[str, Any]] = {}
        for segment, ids in recorded.body.items():
            if segment == "dhanClientId":
                continue
            for security_id in ids:
                ltp = self.market.get((segment, str(security_id)))
                if ltp is not None:
                    data.setdefault(segment, {})[str(security_id)] = _quote(ltp)
        return {"data": data, "status": "success"}

    def _set(self, order: dict[str, Any], **changes: Any) -> None:
        order.update(changes, updateTime=STAMP)

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        quantity = order["remainingQuantity"]
        self.trades.append(
            {
                "dhanClientId": CLIENT_ID,
                "orderId": order["orderId"],
                "exchangeOrderId": order["exchangeOrderId"],
                "exchangeTradeId": str(next(self._trade_ids)),
                "transactionType": order["transactionType"],
                "exchangeSegment": order["exchangeSegment"],
                "productType": order["productType"],
                "orderType": order["orderType"],
                "tradingSymbol": order["tradingSymbol"],
                "securityId": order["securityId"],
                "tradedQuantity": quantity,
                "tradedPrice": price,
                "createTime": STAMP,
                "updateTime": STAMP,
                "exchangeTime": STAMP,
            }
        )
        self._set(
            order,
            orderStatus="TRADED",
            filledQty=order["filledQty"] + quantity,
            remainingQuantity=0,
            averageTradedPrice=price,
        )

    # --- websockets -----------------------------------------------------------------------------
    def ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.listener(connection) != "market":
            return None
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        expected = {"version": "2", "token": ACCESS_TOKEN, "clientId": CLIENT_ID, "authType": "2"}
        if query != expected:
            if set(query) != set(expected):
                self.violation(f"market feed handshake: query {sorted(query)} is not documented")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid token or client id\n")
        return None

    def stream_for(self, socket: ServerConnection) -> _Socket:
        return _Socket(socket=socket, kind=self.listener(socket))

    async def on_connect(self, stream: Stream) -> None:
        """The order-update socket's first message is the client's login; a wrong one closes it."""
        assert isinstance(stream, _Socket)
        if stream.kind != "orders":
            return
        try:
            first = json.loads(await asyncio.wait_for(stream.socket.recv(), 5))
        except (ValueError, TypeError, TimeoutError, ConnectionClosed):
            first = None
        problems = wf.check_order_login(first, CLIENT_ID, ACCESS_TOKEN)
        if problems:
            with self._lock:
                self.violations.extend(f"order updates: {p}" for p in problems)
            await stream.socket.close(1008, "login refused")
            return
        stream.signed_in = True

    async def on_message(self, stream: Stream, message: str | bytes) -> None:
        if stream.kind != "market":
            self.violation("order updates: the client sent more than its login")
            return
        try:
            decoded = json.loads(message)
        except (ValueError, TypeError):
            decoded = None
        problems = wf.check_subscription(decoded)
        with self._lock:
            if problems:
                self.violations.extend(f"market feed: {p}" for p in problems)
            else:
                self.subscriptions.append(decoded)


@dataclass(eq=False)
class _Socket(Stream):
    signed_in: bool = False  # an order-update socket whose login was accepted


def _signed_in(stream: Stream) -> bool:
    return isinstance(stream, _Socket) and stream.kind == "orders" and stream.signed_in


def _holding() -> dict[str, Any]:
    return {
        "exchange": "ALL",
        "tradingSymbol": "RELIANCE",
        "securityId": "2885",
        "isin": "INE002A01018",
        "totalQty": 4,
        "dpQty": 4,
        "t1Qty": 0,
        "availableQty": 4,
        "collateralQty": 0,
        "avgCostPrice": Decimal("2450.75"),
        "lastTradedPrice": Decimal("2900.1"),
    }


def _funds() -> dict[str, Any]:
    return {
        "dhanClientId": CLIENT_ID,
        "availabelBalance": Decimal("99725.05"),
        "sodLimit": Decimal("245431.6"),
        "collateralAmount": 0,
        "receiveableAmount": 0,
        "utilizedAmount": Decimal("145706.55"),
        "blockedPayoutAmount": 0,
        "withdrawableBalance": Decimal("99725.05"),
    }


def _quote(ltp: Decimal) -> dict[str, Any]:
    return {
        "average_price": ltp - 1,
        "buy_quantity": 1200,
        "depth": {
            "buy": [{"quantity": 10, "orders": 2, "price": ltp - Decimal("0.05")}],
            "sell": [{"quantity": 7, "orders": 1, "price": ltp + Decimal("0.05")}],
        },
        "last_price": ltp,
        "last_quantity": 5,
        "last_trade_time": "07/12/2026 09:15:00",
        "lower_circuit_limit": ltp * Decimal("0.8"),
        "net_change": 0,
        "ohlc": {"open": ltp - 5, "close": ltp - 3, "high": ltp + 10, "low": ltp - 12},
        "oi": 0,
        "oi_day_high": 0,
        "oi_day_low": 0,
        "sell_quantity": 900,
        "upper_circuit_limit": ltp * Decimal("1.2"),
        "volume": 123456,
    }


class _Handler(LocalHandler):
    local: DhanServer

    def _handle(self) -> None:
        server = self.local
        split = urlsplit(self.path)
        raw = self.read_body()
        route = server.route(self.command, split.path)
        body: Any = raw
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            try:
                body = json.loads(raw, parse_float=Decimal)
            except ValueError:
                body = raw
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        recorded = self.record(route[0] if route else "unknown", body, raw, query=query)
        if route is None:
            server.violation(f"{self.command} {split.path}: no such Dhan endpoint")
            self.send(404, _error_body("Input_Exception", "DH-905", "No such endpoint"))
            return
        if raw and body is raw and recorded.call not in {"cancel"}:
            error = server.refuse(recorded, ["the body is not JSON with Content-Type application/json"])
            self.send(error.status, error.body)
            return
        call, handler, args = route
        if call == "master":
            self.send(200, server.master_csv.encode(), "text/csv")
            return
        assert handler is not None  # only the master has none
        fault = server.take_fault(call)
        if self.answer_fault(fault):
            return
        try:
            status, payload = 200, server.serve(recorded, handler, args)
        except DhanError as error:
            status, payload = error.status, error.body
        if fault == "timeout":
            self.hang()
            return
        if fault == "malformed":
            status, payload = 200, b'"unexpected"'
        elif fault == "truncated":
            status, payload = 200, payload[: max(1, len(payload) // 2)]
        self.send(status, payload)

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        """Dhan's error for a fault in ``ERRORS``; "timeout", "malformed" and "truncated" serve first."""
        if fault not in ERRORS:
            return None
        status, error_type, code, message = ERRORS[fault]
        return status, _error_body(error_type, code, message), "application/json"

    do_GET = do_POST = do_PUT = do_DELETE = _handle
