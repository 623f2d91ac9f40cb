"""A local Fyers API v3 on loopback for tests, written from the public documentation and SDKs
(fyers-apiv3: fyersModel.py, FyersWebsocket/data_ws.py, order_ws.py; the sample Postman collection and
error table): REST on a ``ThreadingHTTPServer``, the HSM market feed and the order-update socket on a
``websockets`` server, each in a thread of its own.

It checks every request against the documented format: the ``Authorization: <app_id>:<token>`` and
``version: 3`` headers, each body's exact keys, types and enums (``type`` 1-4, ``side`` 1/-1,
``productType``, ``validity``, prices for the types that need them), the sign-in's ``appIdHash``, and
the HSM requests' binary layout. A request it would not accept is answered with Fyers' error envelope
(``{"s": "error", "code": <negative>, "message": ...}``) AND recorded in ``violations``, which the
tests assert is empty. It records every request, keeps a small coherent book (a MARKET order fills at
once at the market's price, a LIMIT or stop order rests pending until modified, cancelled or filled on
demand with ``fill``), and injects the contract suite's faults on demand (``fail_next``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from websockets.asyncio.server import Response, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from tests.brokers.contract.kit import REJECT_MESSAGE
from tests.brokers.local_server import LocalHandler, LocalServer, Stream
from tests.families.fyers import hsm_wire

APP_ID = "FYAPPID01-100"
SECRET_KEY = "FYSECRETKEY9Z"
REDIRECT_URI = "http://127.0.0.1:8000/brokers/fyers/callback/"
AUTH_CODE = "fyauthcode.eyJhdXRoIjoiY29kZSJ9.sig123"
HSM_KEY = "c3e0f4a1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5"
REFRESH_TOKEN = "fyrefresh.eyJyZWZyZXNoIjoxfQ.sig456"
FY_ID = "XA12345"
ACK_EVERY = 3


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def access_token(*, hsm_key: str = HSM_KEY, expires_in: int = 8 * 3600) -> str:
    """A Fyers-shaped access token: a JWT whose claims carry the user, its expiry and the HSM key."""
    now = int(time.time())
    claims = {"iss": "api.fyers.in", "iat": now, "exp": now + expires_in, "sub": "access_token"}
    claims |= {"hsm_key": hsm_key, "fy_id": FY_ID, "appType": 100}
    return f"{_b64({'typ': 'JWT', 'alg': 'HS256'})}.{_b64(claims)}.c2lnbmF0dXJl"


ACCESS_TOKEN = access_token()
AUTHORIZATION = f"{APP_ID}:{ACCESS_TOKEN}"

# symbol ticker -> (fytoken, exchange token, last price)
MARKET = {
    "NSE:RELIANCE-EQ": ("10100000002885", "2885", Decimal("1000")),
    "NSE:SBIN-EQ": ("10100000003045", "3045", Decimal("600.5")),
}
ORDER_KEYS_REQUIRED = {
    "symbol",
    "qty",
    "type",
    "side",
    "productType",
    "limitPrice",
    "stopPrice",
    "validity",
    "disclosedQty",
    "offlineOrder",
}
ORDER_KEYS_OPTIONAL = {"stopLoss", "takeProfit", "orderTag", "isSliceOrder"}
PRODUCTS = {"CNC", "INTRADAY", "MARGIN", "CO", "BO", "MTF"}
ORDER_SOCKET_LISTS = {"orders", "trades", "positions", "edis", "pricealerts", "login"}
WRITE_CALLS = {"place", "modify", "cancel"}


class Refusal(Exception):
    """Fyers' error answer for a request: ``violation`` when the request broke the documented format
    (a test failure), else a refusal the documentation allows (an unknown order, a bad app hash)."""

    def __init__(self, status: int, code: int, message: str, *, violation: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.violation = status, code, message, violation


def _number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


@dataclass(eq=False)
class _Socket(Stream):
    # kind: "market" or "orders"
    authed: bool = False
    topics: set[str] = field(default_factory=set)
    topic_ids: dict[str, int] = field(default_factory=dict)
    sent: int = 0


class FyersServer(LocalServer):
    """See the module docstring. ``url`` is the REST root of the registry's "api" endpoint. It runs
    from construction on."""

    name = "Fyers"
    documented = "Fyers' documented format"

    def __init__(self, *, hang_seconds: float = 3.0) -> None:
        super().__init__()
        self.hang_seconds = hang_seconds
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.order_socket_messages: list[Any] = []
        self.acks: list[int] = []
        self.market = {ticker: price for ticker, (_, _, price) in MARKET.items()}
        self.master: dict[str, bytes] = {}
        self._ids = itertools.count(25080400000101)
        self._trade_ids = itertools.count(1)
        self.start()

    def handler_class(self) -> type[LocalHandler]:
        return _Handler

    # --- addresses ------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return self.root

    @property
    def url(self) -> str:
        return f"{self.base}/api/v3"

    @property
    def ws_url(self) -> str:
        return f"{self.ws_root}/hsm/v1-5/prod"

    def endpoints(self) -> dict[str, str]:
        return {
            "api": self.url,
            "data": f"{self.base}/data",
            "login": f"{self.url}/generate-authcode",
            "ws": self.ws_url,
            "order_ws": f"{self.ws_root}/trade/v3",
            "master": f"{self.base}/sym_details",
        }

    # --- what tests use ---------------------------------------------------------------------------
    def fill(self, broker_order_id: str, price: Decimal) -> None:
        with self._lock:
            self._fill(self.orders[broker_order_id], price)

    def push_order_update(self, broker_order_id: str) -> None:
        with self._lock:
            order = dict(self.orders[broker_order_id])
        raw = {
            "client_id": FY_ID,
            "id": order["id"],
            "id_exchange": order["exchOrdId"],
            "qty": order["qty"],
            "qty_remaining": order["remainingQuantity"],
            "qty_filled": order["filledQty"],
            "price_limit": order["limitPrice"],
            "price_stop": order["stopPrice"],
            "price_traded": order["tradedPrice"],
            "ord_type": order["type"],
            "fy_token": order["fyToken"],
            "exchange": 10,
            "segment": 10,
            "symbol": order["symbol"],
            "instrument": 0,
            "oms_msg": order["message"],
            "offline_flag": order["offlineOrder"],
            "time_oms": order["orderDateTime"],
            "validity": order["orderValidity"],
            "product_type": order["productType"],
            "tran_side": order["side"],
            "org_ord_status": order["status"],
            "ord_status": order["status"],
            "ord_source": "API",
            "ordertag": order["orderTag"],
        }
        self.send_all(json.dumps({"s": "ok", "orders": raw}, default=_json_default), "orders")

    def push_tick(self, token: str, ltp: Decimal) -> None:
        ticker = next(t for t, (fytoken, _, _) in MARKET.items() if fytoken == token)
        with self._lock:
            self.market[ticker] = ltp

        async def send() -> None:
            for socket in self.open_streams("market"):
                assert isinstance(socket, _Socket)
                await self._send_topic(socket, ticker)

        self.call(send())

    def push_raw(self, message: str | bytes) -> None:
        self.send_all(message, "market")

    def order_socket_count(self) -> int:
        return len(self.open_streams("orders"))

    # --- REST -------------------------------------------------------------------------------------
    @staticmethod
    def _call_name(method: str, path: str) -> str:
        names = {
            ("GET", "/api/v3/generate-authcode"): "login",
            ("POST", "/api/v3/validate-authcode"): "login",
            ("POST", "/api/v3/orders/sync"): "place",
            ("PATCH", "/api/v3/orders/sync"): "modify",
            ("DELETE", "/api/v3/orders/sync"): "cancel",
            ("GET", "/api/v3/orders"): "orders",
            ("GET", "/api/v3/tradebook"): "trades",
            ("GET", "/api/v3/positions"): "positions",
            ("GET", "/api/v3/holdings"): "holdings",
            ("GET", "/api/v3/funds"): "funds",
            ("GET", "/data/quotes"): "quote",
        }
        if path.startswith("/sym_details/"):
            return "master"
        return names.get((method, path), "unknown")

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any, raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if path == "/api/v3/generate-authcode" and method == "GET":
            return self._authorise(query)
        if path.startswith("/sym_details/") and method == "GET":
            name = path.rsplit("/", 1)[1]
            if name.removesuffix(".csv") not in self.master:
                raise Refusal(404, -404, f"no symbol master {name}", violation=False)
            return 200, self.master[name.removesuffix(".csv")], {}
        if body is None:
            raise Refusal(400, -50, "the body is not JSON")
        if path == "/api/v3/validate-authcode" and method == "POST":
            return self._validate_authcode(headers, body)
        if headers.get("version") != "3":
            raise Refusal(400, -50, "the version header must be 3")
        if headers.get("authorization") != AUTHORIZATION:
            raise Refusal(401, -16, "Could not authenticate the user", violation=False)
        handlers = {
            ("POST", "/api/v3/orders/sync"): self._place,
            ("PATCH", "/api/v3/orders/sync"): self._modify,
            ("DELETE", "/api/v3/orders/sync"): self._cancel,
        }
        if (method, path) in handlers:
            if headers.get("content-type", "").split(";")[0] != "application/json" or not isinstance(body, dict):
                raise Refusal(400, -50, "an order request is a JSON object with Content-Type application/json")
            with self._lock:
                return 200, handlers[(method, path)](body), {}
        if method != "GET":
            raise Refusal(404, -50, f"no route {method} {path}")
        if raw:
            raise Refusal(400, -50, "a GET carries no body")
        with self._lock:
            if path == "/api/v3/orders":
                return 200, self._ok(orderBook=list(self.orders.values())), {}
            if path == "/api/v3/tradebook":
                return 200, self._ok(tradeBook=list(self.trades)), {}
            if path == "/api/v3/positions":
                return 200, self._ok(netPositions=self._positions(), overall={}), {}
            if path == "/api/v3/holdings":
                return 200, self._ok(holdings=[_holding()], overall={}), {}
            if path == "/api/v3/funds":
                return 200, self._ok(fund_limit=_funds()), {}
            if path == "/data/quotes":
                return 200, self._quotes(query), {}
        raise Refusal(404, -50, f"no route {method} {path}")

    @staticmethod
    def _ok(**data: Any) -> dict[str, Any]:
        return {"s": "ok", "code": 200, "message": "", **data}

    # --- sign-in ----------------------------------------------------------------------------------
    def _authorise(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        expected = {"client_id", "redirect_uri", "response_type", "state"}
        if set(query) != expected:
            raise Refusal(400, -50, f"generate-authcode takes {sorted(expected)}, not {sorted(query)}")
        if query["client_id"] != APP_ID or query["redirect_uri"] != REDIRECT_URI or query["response_type"] != "code":
            raise Refusal(400, -50, "unknown client_id, redirect_uri or response_type")
        back = {"s": "ok", "code": "200", "auth_code": AUTH_CODE, "state": query["state"]}
        location = f"{REDIRECT_URI}?{urlencode(back)}"
        return 302, b"", {"Location": location}

    def _validate_authcode(self, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or set(body) != {"grant_type", "appIdHash", "code"}:
            raise Refusal(400, -50, "validate-authcode takes grant_type, appIdHash and code")
        if body["grant_type"] != "authorization_code":
            raise Refusal(400, -50, "grant_type must be authorization_code")
        if body["appIdHash"] != hashlib.sha256(f"{APP_ID}:{SECRET_KEY}".encode()).hexdigest():
            raise Refusal(400, -371, "Please provide sha256 hash of appId and app secret", violation=False)
        if body["code"] != AUTH_CODE:
            raise Refusal(400, -374, "Please provide authorization code.", violation=False)
        return 200, self._ok(access_token=ACCESS_TOKEN, refresh_token=REFRESH_TOKEN), {}

    # --- orders -----------------------------------------------------------------------------------
    def _place(self, body: dict[str, Any]) -> dict[str, Any]:
        keys = set(body)
        if not keys >= ORDER_KEYS_REQUIRED or not keys <= ORDER_KEYS_REQUIRED | ORDER_KEYS_OPTIONAL:
            raise Refusal(400, -50, f"an order's keys are {sorted(ORDER_KEYS_REQUIRED)} (+ optional): {sorted(keys)}")
        ticker = body["symbol"]
        if not isinstance(ticker, str) or ticker not in MARKET:
            raise Refusal(400, -300, "Please provide a valid symbol")
        qty, kind, side = body["qty"], body["type"], body["side"]
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise Refusal(400, -310, "Please provide a valid order quantity")
        if kind not in (1, 2, 3, 4) or isinstance(kind, bool):
            raise Refusal(400, -101, "Please provide a valid order type")
        if side not in (1, -1) or isinstance(side, bool):
            raise Refusal(400, -313, "Please provide a valid order side of either buy or sell")
        if body["productType"] not in PRODUCTS:
            raise Refusal(400, -314, "Please provide a valid product type for the order")
        if body["validity"] not in ("DAY", "IOC"):
            raise Refusal(400, -326, "Please provide a valid order validity")
        if not isinstance(body["offlineOrder"], bool):
            raise Refusal(400, -328, "Please provide a valid order offline flag")
        limit, stop = body["limitPrice"], body["stopPrice"]
        if not _number(limit) or not _number(stop) or not _number(body["disclosedQty"]) or limit < 0 or stop < 0:
            raise Refusal(400, -308, "Please provide a valid limitPrice")
        if kind in (1, 4) and limit <= 0:
            raise Refusal(400, -308, "Please provide a valid limitPrice")
        if kind in (3, 4) and stop <= 0:
            raise Refusal(400, -309, "Please provide a valid stop price")
        if kind == 2 and limit != 0:
            raise Refusal(400, -308, "a market order carries no limitPrice")
        for name in ("stopLoss", "takeProfit"):
            if name in body and not _number(body[name]):
                raise Refusal(400, -311, f"Please provide a valid {name}")
        tag = body.get("orderTag", "")
        if not isinstance(tag, str) or (tag and (not tag.isascii() or not tag.isalnum() or len(tag) > 20)):
            raise Refusal(400, -50, "orderTag is up to 20 letters and digits")
        for price in (limit, stop):
            if price and (Decimal(price) * 20) % 1:
                raise Refusal(400, -392, "Price should be in multiples of tick size.", violation=False)
        order_id = str(next(self._ids))
        fytoken = MARKET[ticker][0]
        order = {
            "clientId": FY_ID,
            "id": order_id,
            "exchOrdId": "",
            "qty": qty,
            "remainingQuantity": qty,
            "filledQty": 0,
            "discloseQty": body["disclosedQty"],
            "limitPrice": limit if kind in (1, 4) else 0,
            "stopPrice": stop if kind in (3, 4) else 0,
            "tradedPrice": 0,
            "type": kind,
            "fyToken": fytoken,
            "exchange": 10,
            "segment": 10,
            "symbol": ticker,
            "instrument": 0,
            "message": "",
            "offlineOrder": body["offlineOrder"],
            "orderDateTime": time.strftime("%d-%b-%Y %H:%M:%S"),
            "orderValidity": body["validity"],
            "productType": body["productType"],
            "side": side,
            "status": 6,
            "source": "API",
            "orderTag": f"1:{tag}" if tag else "2:Untagged",
            "orderNumStatus": f"{order_id}:6",
        }
        self.orders[order_id] = order
        if kind == 2:
            self._fill(order, self.market[ticker])
        message = f"Order Submitted Successfully. Your Order Ref. No.{order_id}"
        return {"s": "ok", "code": 1101, "message": message, "id": order_id}

    def _pending(self, body: dict[str, Any]) -> dict[str, Any]:
        order_id = body.get("id")
        if not isinstance(order_id, str):
            raise Refusal(400, -209, "Please provide a valid order number")
        order = self.orders.get(order_id)
        if order is None:
            raise Refusal(400, -209, "Please provide a valid order number", violation=False)
        if order["status"] == 1:
            raise Refusal(400, -161, "This order has already been cancelled", violation=False)
        if order["status"] == 2:
            raise Refusal(400, -162, "This order has already traded", violation=False)
        if order["status"] != 6:
            raise Refusal(400, -164, "This order has already been rejected", violation=False)
        return order

    def _modify(self, body: dict[str, Any]) -> dict[str, Any]:
        if "id" not in body or not set(body) <= {"id", "type", "limitPrice", "stopPrice", "qty"} or len(body) < 2:
            raise Refusal(
                400, -50, f"a modification is id and some of type, limitPrice, stopPrice, qty: {sorted(body)}"[:200]
            )
        order = self._pending(body)
        kind = body.get("type", order["type"])
        if kind not in (1, 2, 3, 4) or isinstance(kind, bool):
            raise Refusal(400, -101, "Please provide a valid order type")
        if "qty" in body and (not isinstance(body["qty"], int) or isinstance(body["qty"], bool) or body["qty"] < 1):
            raise Refusal(400, -310, "Please provide a valid order quantity")
        for name in ("limitPrice", "stopPrice"):
            if name in body and (not _number(body[name]) or body[name] <= 0):
                raise Refusal(400, -308, f"Please provide a valid {name}")
        if "limitPrice" in body and kind not in (1, 4):
            raise Refusal(400, -308, "only a limit or stop-limit order takes a limitPrice")
        order["type"] = kind
        if "qty" in body:
            order["qty"] = body["qty"]
            order["remainingQuantity"] = body["qty"] - order["filledQty"]
        order["limitPrice"] = body.get("limitPrice", order["limitPrice"]) if kind in (1, 4) else 0
        order["stopPrice"] = body.get("stopPrice", order["stopPrice"]) if kind in (3, 4) else 0
        return {"s": "ok", "code": 1102, "message": "Successfully modified order", "id": order["id"]}

    def _cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        if set(body) != {"id"}:
            raise Refusal(400, -50, f"a cancellation is {{'id'}} only, not {sorted(body)}")
        order = self._pending(body)
        order.update(status=1, orderNumStatus=f"{order['id']}:1", message="Cancelled by user")
        return {"s": "ok", "code": 1103, "message": "Successfully cancelled order", "id": order["id"]}

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        quantity = order["remainingQuantity"]
        order.update(
            status=2,
            filledQty=order["qty"],
            remainingQuantity=0,
            tradedPrice=price,
            exchOrdId=f"1100000{order['id'][-6:]}",
            orderNumStatus=f"{order['id']}:2",
        )
        self.trades.append(
            {
                "clientId": FY_ID,
                "orderDateTime": time.strftime("%d-%b-%Y %H:%M:%S"),
                "orderNumber": order["id"],
                "exchangeOrderNo": order["exchOrdId"],
                "exchange": 10,
                "side": order["side"],
                "segment": 10,
                "orderType": order["type"],
                "fyToken": order["fyToken"],
                "productType": order["productType"],
                "tradedQty": quantity,
                "tradePrice": price,
                "tradeValue": price * quantity,
                "tradeNumber": f"{order['exchOrdId']}-{next(self._trade_ids)}",
                "row": len(self.trades) + 1,
                "symbol": order["symbol"],
                "orderTag": order["orderTag"],
            }
        )

    def _positions(self) -> list[dict[str, Any]]:
        net: dict[tuple[str, str], dict[str, Any]] = {}
        for trade in self.trades:
            key = (trade["symbol"], trade["productType"])
            row = net.setdefault(
                key,
                {"symbol": key[0], "productType": key[1], "fyToken": trade["fyToken"], "buyQty": 0, "sellQty": 0},
            )
            row["buyQty" if trade["side"] == 1 else "sellQty"] += trade["tradedQty"]
            row["netAvg"] = trade["tradePrice"]
        rows = []
        for (symbol, product), row in net.items():
            quantity = row["buyQty"] - row["sellQty"]
            rows.append(
                {
                    **row,
                    "id": f"{symbol}-{product}",
                    "netQty": quantity,
                    "qty": abs(quantity),
                    "avgPrice": row["netAvg"],
                    "side": 1 if quantity > 0 else -1 if quantity < 0 else 0,
                    "segment": 10,
                    "exchange": 10,
                    "realized_profit": 0,
                    "unrealized_profit": 0,
                    "pl": 0,
                }
            )
        return rows

    def _quotes(self, query: dict[str, str]) -> dict[str, Any]:
        if set(query) != {"symbols"} or not query["symbols"]:
            raise Refusal(400, -50, "quotes take symbols=<comma-separated tickers>")
        names = query["symbols"].split(",")
        if len(names) > 50:
            raise Refusal(400, -50, "at most 50 symbols")
        rows = []
        for name in names:
            if name not in MARKET:
                rows.append({"n": name, "s": "error", "v": {"s": "error", "code": -300, "errmsg": "invalid symbol"}})
                continue
            price = self.market[name]
            rows.append(
                {
                    "n": name,
                    "s": "ok",
                    "v": {
                        "ch": 0,
                        "chp": 0,
                        "lp": price,
                        "spread": Decimal("0.1"),
                        "ask": price + Decimal("0.05"),
                        "bid": price - Decimal("0.05"),
                        "open_price": price,
                        "high_price": price,
                        "low_price": price,
                        "prev_close_price": price,
                        "volume": 12345,
                        "short_name": name.split(":")[1],
                        "exchange": "NSE",
                        "description": name,
                        "original_name": name,
                        "symbol": name,
                        "fyToken": MARKET[name][0],
                        "tt": int(time.time()),
                    },
                }
            )
        return {"s": "ok", "code": 200, "message": "", "d": rows}

    # --- websockets -------------------------------------------------------------------------------
    def ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/trade/v3":
            if request.headers.get("authorization") != AUTHORIZATION:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid token\n")
            return None
        if path == "/hsm/v1-5/prod":
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, "no such socket\n")

    def stream_for(self, socket: ServerConnection) -> _Socket:
        assert socket.request is not None
        kind = "orders" if urlsplit(socket.request.path).path == "/trade/v3" else "market"
        return _Socket(socket=socket, kind=kind)

    async def on_message(self, socket: Stream, message: str | bytes) -> None:
        assert isinstance(socket, _Socket)
        if socket.kind == "orders":
            await self._on_order_socket(socket, message)
        else:
            await self._on_market(socket, message)

    async def _on_order_socket(self, socket: _Socket, message: str | bytes) -> None:
        if message == "ping":
            await socket.socket.send("pong")
            return
        try:
            request = json.loads(message)
            valid = (
                isinstance(request, dict)
                and set(request) == {"T", "SLIST", "SUB_T"}
                and request["T"] == "SUB_ORD"
                and request["SUB_T"] in (1, -1)
                and isinstance(request["SLIST"], list)
                and request["SLIST"]
                and set(request["SLIST"]) <= ORDER_SOCKET_LISTS
            )
        except (ValueError, TypeError):
            valid = False
        if not valid:
            self.violation(f"order socket: not a subscription: {str(message)[:80]}")
            await socket.socket.send(json.dumps({"s": "error", "code": -1600, "message": "invalid request"}))
            return
        self.order_socket_messages.append(request)
        socket.authed = True
        await socket.socket.send(json.dumps({"s": "ok", "code": 1605, "message": "Successfully subscribed"}))

    async def _on_market(self, socket: _Socket, message: str | bytes) -> None:
        if isinstance(message, str):
            self.violation("market feed: a text message (the HSM protocol is binary)")
            return
        if message == bytes([0, 1, 11]):
            return  # the heartbeat
        try:
            request = hsm_wire.read_request(message)
            await self._on_request(socket, request)
        except (hsm_wire.WireError, UnicodeDecodeError, KeyError) as exc:
            self.violation(f"market feed: {exc}")

    async def _on_request(self, socket: _Socket, request: hsm_wire.Request) -> None:
        fields = request.fields
        if request.kind == 1:
            expected_length = 18 + len(fields.get(1, b"")) + len(fields.get(4, b"")) - 2
            if set(fields) != {1, 2, 3, 4} or fields[2] != b"P" or fields[3] != b"\x01" or not fields[4]:
                raise hsm_wire.WireError("the authentication request's fields are not token, 'P', 1, source")
            if request.declared_length != expected_length:
                raise hsm_wire.WireError("the authentication request's length is wrong")
            socket.authed = fields[1].decode() == HSM_KEY
            await socket.socket.send(hsm_wire.auth_response(ok=socket.authed, ack_every=ACK_EVERY))
        elif request.kind == 12:
            if set(fields) != {1, 2} or len(fields[1]) != 8 or fields[2] not in (b"F", b"L"):
                raise hsm_wire.WireError("the mode request is a channel mask and 70 or 76")
            await socket.socket.send(hsm_wire.reply(12))
        elif request.kind == 4:
            if not socket.authed:
                raise hsm_wire.WireError("a subscription before authentication")
            if set(fields) != {1, 2} or len(fields[2]) != 1 or not 1 <= fields[2][0] <= 30:
                raise hsm_wire.WireError("a subscription is a topic list and a channel 1-30")
            topics = hsm_wire.read_topics(fields[1])
            if not topics or len(topics) > 1500:
                raise hsm_wire.WireError("a subscription names 1 to 1,500 topics")
            length = 18 + len(fields[1]) + len(AUTHORIZATION) + len(b"terminal-fyers")
            if request.declared_length != length & 0xFFFF:
                raise hsm_wire.WireError("the subscription's length is not the SDK's")
            for topic in topics:
                parts = topic.split("|")
                if len(parts) != 3 or parts[0] not in ("sf", "if", "dp") or parts[1] not in hsm_wire.SEGMENTS.values():
                    raise hsm_wire.WireError(f"topic {topic!r} is not kind|segment|token")
            self.subscriptions.append(topics)
            socket.topics.update(topics)
            await socket.socket.send(hsm_wire.reply(4))
            for ticker in MARKET:
                if hsm_wire.topic_of(MARKET[ticker][0]) in topics:
                    await self._send_topic(socket, ticker)
        elif request.kind == 3:
            if set(fields) != {1} or len(fields[1]) != 4 or request.declared_length != 9:
                raise hsm_wire.WireError("an acknowledgement is one 4-byte message number")
            number = int.from_bytes(fields[1], "big")
            if number > socket.sent:
                raise hsm_wire.WireError("an acknowledgement of a message not sent")
            self.acks.append(number)
        else:
            raise hsm_wire.WireError(f"request type {request.kind} is not one the client sends")

    async def _send_topic(self, socket: _Socket, ticker: str) -> None:
        fytoken, exchange_token, _ = MARKET[ticker]
        topic = hsm_wire.topic_of(fytoken)
        if topic not in socket.topics:
            return
        price = hsm_wire.raw_price(self.market[ticker])
        now = int(time.time())
        if topic not in socket.topic_ids:
            socket.topic_ids[topic] = len(socket.topic_ids) + 1
            values = {name: 0 for name in hsm_wire.SCRIP}
            values |= {"ltp": price, "exch_feed_time": now, "last_traded_time": now, "vol_traded_today": 1000}
            values |= {"bid_price": price - 5, "ask_price": price + 5, "bid_size": 10, "ask_size": 12}
            values |= {"open_price": price, "high_price": price, "low_price": price, "prev_close_price": price}
            packet = hsm_wire.snapshot(
                socket.topic_ids[topic], topic, values, exchange_token=exchange_token, symbol=ticker.split(":")[1]
            )
        else:
            packet = hsm_wire.update(socket.topic_ids[topic], {"ltp": price, "exch_feed_time": now})
        socket.sent += 1
        with contextlib.suppress(ConnectionClosed):
            await socket.socket.send(hsm_wire.data(socket.sent, [packet]))


class _Handler(LocalHandler):
    local: FyersServer

    def _serve(self) -> None:
        server = self.local
        raw = self.read_body()
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        call = server._call_name(self.command, split.path)
        body: Any = {}
        if raw:
            try:
                body = json.loads(raw, parse_float=Decimal)
            except ValueError:
                body = None
        headers = dict(self.record(call, body, raw, query=query).headers)
        fault = server.take_fault(call)
        if self.answer_fault(fault):
            return
        try:
            status, payload, extra_headers = server._route(self.command, split.path, query, headers, body, raw)
        except Refusal as refusal:
            if refusal.violation:
                server.violation(f"{self.command} {split.path}: {refusal.message}")
            status, extra_headers = refusal.status, {}
            payload = {"s": "error", "code": refusal.code, "message": refusal.message}
        if fault == "timeout":  # processed, and the answer never comes
            self.hang()
            return
        self._write(status, payload, extra_headers)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        answers: dict[str, tuple[int, Any]] = {
            "malformed": (200, {"unexpected": ["not", "the", "envelope"]}),
            "truncated": (200, b'{"s":"ok","code":200,"message":"","orderBook":[{"id":"25'),
            "rate_limited": (429, {"s": "error", "code": -353, "message": "API Limit exceeded (perSec)"}),
            "session_expired": (401, {"s": "error", "code": -16, "message": "Could not authenticate the user"}),
            "rejected": (400, {"s": "error", "code": -99, "message": REJECT_MESSAGE}),
        }
        if fault == "http_500":
            return 500, b"<html><body>500 Internal Server Error</body></html>", "text/html"
        if fault not in answers:
            return None
        status, payload = answers[fault]
        return status, _body(payload), "application/json"

    def _write(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        body = _body(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)


def _body(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload, default=_json_default).encode()


def _holding() -> dict[str, Any]:
    fytoken = MARKET["NSE:RELIANCE-EQ"][0]
    return {
        "holdingType": "HLD",
        "quantity": 5,
        "costPrice": Decimal("950.5"),
        "marketVal": Decimal("5000"),
        "remainingQuantity": 5,
        "pl": Decimal("247.5"),
        "ltp": Decimal("1000"),
        "id": 1,
        "fyToken": fytoken,
        "exchange": 10,
        "symbol": "NSE:RELIANCE-EQ",
        "segment": 10,
        "isin": "INE002A01018",
        "qty_t1": 0,
        "remainingPledgeQuantity": 0,
        "collateralQuantity": 0,
    }


def _funds() -> list[dict[str, Any]]:
    titles = [
        "Total Balance",
        "Utilized Amount",
        "Clear Balance",
        "Realized Profit and Loss",
        "Collaterals",
        "Fund Transfer",
        "Receivables",
        "Adhoc Limits",
        "Limit at start of the day",
        "Available Balance",
    ]
    amounts = {1: Decimal("100000"), 2: Decimal("2500.5"), 10: Decimal("97499.5")}
    return [
        {"id": index, "title": title, "equityAmount": amounts.get(index, Decimal(0)), "commodityAmount": 0}
        for index, title in enumerate(titles, start=1)
    ]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
