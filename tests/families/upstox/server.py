"""A local Upstox server for tests, written from Upstox's public API documentation and upstox-python.

On loopback only: an HTTP server (the API host at ``/``, the HFT order host at ``/hft``, the login
dialog, the master file at ``/assets``) and a websocket server (the market-data feed v3 and the
portfolio stream). Every request is checked against the documented format: a missing or extra field,
a wrong type or enum, a missing header, an order sent to the wrong host is answered with Upstox's
error envelope AND recorded in ``violations`` (tests assert it stays empty). Every request is
recorded (``requests``, by the contract suite's call names).

A small coherent book: a MARKET order fills at once (a trade), a LIMIT or SL order rests until
modified, cancelled or filled on demand (``fill``). Faults on demand (``fail_next``): the contract
suite's names (tests/brokers/contract/kit.py).
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Response, ServerConnection
from websockets.http11 import Request

from tests.brokers.contract.kit import REJECT_MESSAGE, Recorded
from tests.brokers.local_server import LocalHandler, LocalServer, Stream
from tests.families.upstox import feed_wire

IST = ZoneInfo("Asia/Kolkata")
API_KEY = "upstox-client-id-0001"
API_SECRET = "upstox-client-secret-0002"
REDIRECT_URI = "http://127.0.0.1/brokers/upstox/callback/"
AUTH_CODE = "auth-code-Xy12"
ACCESS_TOKEN = "upstox-access-token-0003"
USER_ID = "UP1234"
EQUITY_KEY = "NSE_EQ|INE002A01018"  # RELIANCE

_KEY = re.compile(r"(NSE_EQ|BSE_EQ|NSE_FO|BSE_FO|NCD_FO|BCD_FO|MCX_FO|NSE_INDEX|BSE_INDEX)\|[A-Za-z0-9 ]{1,40}")
_NUMBER = (int, float)
PLACE_FIELDS = {
    "quantity": "int",
    "product": ("I", "D", "MTF"),
    "validity": ("DAY", "IOC"),
    "price": "number",
    "instrument_token": "key",
    "order_type": ("MARKET", "LIMIT", "SL", "SL-M"),
    "transaction_type": ("BUY", "SELL"),
    "disclosed_quantity": "int",
    "trigger_price": "number",
    "is_amo": "bool",
}
PLACE_OPTIONAL = {"tag": "str", "slice": "bool", "market_protection": "number"}
MODIFY_FIELDS = {
    "validity": ("DAY", "IOC"),
    "price": "number",
    "order_id": "str",
    "order_type": ("MARKET", "LIMIT", "SL", "SL-M"),
    "trigger_price": "number",
}
MODIFY_OPTIONAL = {"quantity": "int", "disclosed_quantity": "int", "market_protection": "number"}
MODES = {"ltpc", "full", "option_greeks", "full_d30"}
MARKET_PATH, PORTFOLIO_PATH = "/v3/feed/market-data-feed", "/v2/feed/portfolio-stream-feed"


class UpstoxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: str, message: str) -> bytes:
    return json.dumps(
        {
            "status": "error",
            "errors": [{"errorCode": code, "message": message, "propertyPath": None, "invalidValue": None}],
        }
    ).encode()


def _ok(data: Any) -> bytes:
    return json.dumps({"status": "success", "data": data}, default=_default).encode()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _stamp() -> str:
    return datetime.now(IST).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Instrument:
    key: str
    symbol: str
    exchange: str  # the order book's exchange field (NSE, BSE, NFO...)
    ltp: Decimal


class UpstoxServer(LocalServer):
    """See the module docstring. ``start()`` returns it running; ``stop()`` ends both servers and
    fails the test if a request broke Upstox's documented format (a test that sends bad requests on
    purpose clears ``violations`` first)."""

    name = "Upstox"
    documented = "Upstox's documented format"
    hang_seconds = 15.0

    def __init__(self) -> None:
        super().__init__()
        self.portfolio_queries: list[str] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.holdings: list[dict[str, Any]] = []
        self.market: dict[str, Instrument] = {
            EQUITY_KEY: Instrument(EQUITY_KEY, "RELIANCE", "NSE", Decimal("1000")),
            "NSE_EQ|INE009A01021": Instrument("NSE_EQ|INE009A01021", "INFY", "NSE", Decimal("1500.5")),
        }
        self.master = b""
        self.token_valid = True
        self._order_ids = itertools.count(250101000000001)
        self._trade_ids = itertools.count(50000001)

    def handler_class(self) -> type[LocalHandler]:
        return _Handler

    @property
    def ws_url(self) -> str:
        return f"{self.ws_root}{MARKET_PATH}"

    @property
    def portfolio_url(self) -> str:
        return f"{self.ws_root}{PORTFOLIO_PATH}"

    def endpoints(self) -> dict[str, str]:
        return {
            "api": self.url,
            "hft": self.url + "/hft",
            "login": self.url + "/v2/login/authorization/dialog",
            "ws": self.ws_url,
            "order_ws": self.portfolio_url,
            "master": self.url + "/assets/complete.json.gz",
        }

    # --- what tests use ---------------------------------------------------------------------------
    def fill(self, broker_order_id: str, price: Decimal) -> None:
        with self._lock:
            self._fill(self.orders[broker_order_id], Decimal(price))

    def reject_at_exchange(self, broker_order_id: str, message: str) -> None:
        with self._lock:
            order = self.orders[broker_order_id]
            order.update(status="rejected", status_message=message, pending_quantity=0)

    def set_master(self, rows: list[dict[str, Any]] | bytes) -> None:
        self.master = rows if isinstance(rows, bytes) else gzip.compress(json.dumps(rows).encode())

    def login_redirect(self, query: Mapping[str, str]) -> str:
        """The authorization dialog: a user who signs in is sent to ``redirect_uri`` with the code."""
        expected = {"response_type": "code", "client_id": API_KEY, "redirect_uri": REDIRECT_URI}
        for name, value in expected.items():
            if query.get(name) != value:
                self.violation(f"login dialog: {name}={query.get(name)!r}")
                raise UpstoxError(400, "UDAPI100036", f"Invalid input: {name}")
        return f"{REDIRECT_URI}?{urlencode({'code': AUTH_CODE, 'state': query.get('state', '')})}"

    def order_update(self, broker_order_id: str) -> dict[str, Any]:
        """The portfolio stream's (and webhook's) message for the order as it stands."""
        with self._lock:
            order = dict(self.orders[broker_order_id])
        return {
            "update_type": "order",
            "user_id": USER_ID,
            "userId": USER_ID,
            "instrument_key": order["instrument_token"],
            **order,
        }

    def push_order_update(self, broker_order_id: str) -> None:
        message = json.dumps(self.order_update(broker_order_id), default=_default)
        self.send_all(message, "portfolio")

    def push_tick(self, token: str, ltp: Decimal) -> None:
        self.push_raw(tick_message(token, ltp))

    def push_raw(self, message: str | bytes) -> None:
        self.send_all(message, "market")

    def market_clients(self) -> int:
        return len(self.open_streams("market"))

    def portfolio_clients(self) -> int:
        return len(self.open_streams("portfolio"))

    # --- HTTP -------------------------------------------------------------------------------------
    def route(self, method: str, path: str) -> tuple[str, bool] | None:
        """The call's name and whether it belongs on the HFT host."""
        table = {
            ("POST", "/v2/login/authorization/token"): ("login", False),
            ("POST", "/v3/order/place"): ("place", True),
            ("PUT", "/v3/order/modify"): ("modify", True),
            ("DELETE", "/v3/order/cancel"): ("cancel", True),
            ("GET", "/v2/order/retrieve-all"): ("orders", False),
            ("GET", "/v2/order/details"): ("order_details", False),
            ("GET", "/v2/order/trades/get-trades-for-day"): ("trades", False),
            ("GET", "/v2/order/trades"): ("order_trades", False),
            ("GET", "/v2/portfolio/short-term-positions"): ("positions", False),
            ("GET", "/v2/portfolio/long-term-holdings"): ("holdings", False),
            ("GET", "/v2/user/get-funds-and-margin"): ("funds", False),
            ("GET", "/v2/market-quote/quotes"): ("quote", False),
        }
        return table.get((method, path))

    def serve(self, call: str, recorded: Recorded, *, hft: bool, on_hft: bool) -> bytes:
        """Check and serve one request; raises UpstoxError for Upstox's refusals."""
        if hft != on_hft:
            self.violation(f"{call}: sent to the {'HFT' if on_hft else 'API'} host")
            raise UpstoxError(404, "UDAPI10000", "This request is not supported by Upstox API")
        headers = recorded.headers
        if call == "login":
            return self._token(recorded)
        if headers.get("accept") != "application/json":
            self.violation(f"{call}: Accept {headers.get('accept')!r}")
        if recorded.path.startswith("/v2/") and headers.get("api-version") != "2.0":
            self.violation(f"{call}: no Api-Version 2.0 header")
            raise UpstoxError(400, "UDAPI100015", "API Version does not exist")
        if headers.get("authorization") != f"Bearer {ACCESS_TOKEN}" or not self.token_valid:
            if not headers.get("authorization", "").startswith("Bearer "):
                self.violation(f"{call}: no Bearer authorization")
            raise UpstoxError(401, "UDAPI100050", "Invalid token used to access API")
        query = dict(recorded.query)
        with self._lock:
            if call == "place":
                return _ok({"order_ids": [self._place(recorded)]})
            if call == "modify":
                return _ok({"order_id": self._modify(recorded)})
            if call == "cancel":
                return _ok({"order_id": self._cancel(query)})
            if call == "orders":
                return _ok(list(self.orders.values()))
            if call == "order_details":
                return _ok(self._order(query.get("order_id", "")))
            if call == "trades":
                return _ok(list(self.trades))
            if call == "order_trades":
                order_id = self._order(query.get("order_id", ""))["order_id"]
                return _ok([t for t in self.trades if t["order_id"] == order_id])
            if call == "positions":
                return _ok(list(self.positions))
            if call == "holdings":
                return _ok(list(self.holdings))
            if call == "funds":
                return _ok({"equity": _segment(), "commodity": _segment()})
            if call == "quote":
                return _ok(self._quotes(query))
        raise AssertionError(call)

    def _token(self, recorded: Recorded) -> bytes:
        if "application/x-www-form-urlencoded" not in recorded.headers.get("content-type", ""):
            self.violation("login: the token exchange is not form-encoded")
        if recorded.headers.get("api-version") != "2.0":
            self.violation("login: no Api-Version 2.0 header")
        form = recorded.body if isinstance(recorded.body, dict) else {}
        expected = {
            "code": AUTH_CODE,
            "client_id": API_KEY,
            "client_secret": API_SECRET,
            "redirect_uri": REDIRECT_URI,
            "grant_type": "authorization_code",
        }
        if set(form) != set(expected):
            self.violation(f"login: fields {sorted(form)}")
            raise UpstoxError(400, "UDAPI100036", "Invalid Input")
        if any(form[name] != value for name, value in expected.items()):
            raise UpstoxError(401, "UDAPI100016", "Invalid Credentials")
        return json.dumps(
            {
                "email": "trader@example.com",
                "exchanges": ["NSE", "NFO", "BSE", "CDS", "BFO", "MCX"],
                "products": ["D", "I", "CO", "MTF"],
                "broker": "UPSTOX",
                "user_id": USER_ID,
                "user_name": "Test Trader",
                "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
                "user_type": "individual",
                "poa": False,
                "is_active": True,
                "access_token": ACCESS_TOKEN,
                "extended_token": None,
            }
        ).encode()

    def _check(self, call: str, body: Any, required: dict[str, Any], optional: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            self.violation(f"{call}: the body is not a JSON object")
            raise UpstoxError(400, "UDAPI100036", "Invalid Input")
        problems = [f"missing {name}" for name in required if name not in body]
        problems += [f"unknown field {name}" for name in body if name not in required and name not in optional]
        for name, value in body.items():
            kind = required.get(name) or optional.get(name)
            if kind is None:
                continue
            ok = (
                {
                    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                    "number": lambda v: isinstance(v, _NUMBER) and not isinstance(v, bool) and v >= 0,
                    "bool": lambda v: isinstance(v, bool),
                    "str": lambda v: isinstance(v, str) and 0 < len(v) <= 64,
                    "key": lambda v: isinstance(v, str) and _KEY.fullmatch(v) is not None,
                }[kind](value)
                if isinstance(kind, str)
                else value in kind
            )
            if not ok:
                problems.append(f"{name}={value!r}")
        if problems:
            self.violation(f"{call}: {', '.join(problems)}")
            raise UpstoxError(400, "UDAPI100036", f"Invalid Input: {', '.join(problems)}")
        return body

    def _place(self, recorded: Recorded) -> str:
        body = self._check("place", recorded.body, PLACE_FIELDS, PLACE_OPTIONAL)
        kind = body["order_type"]
        if body["quantity"] <= 0:
            self.violation("place: quantity must be positive")
            raise UpstoxError(400, "UDAPI1023", "Quantity should be greater than 0")
        if kind in {"LIMIT", "SL"} and not body["price"]:
            self.violation("place: a LIMIT or SL order without its price")
            raise UpstoxError(400, "UDAPI1016", "Price is required")
        if kind in {"SL", "SL-M"} and not body["trigger_price"]:
            self.violation("place: a stop order without its trigger price")
            raise UpstoxError(400, "UDAPI1017", "Trigger price is required")
        if kind in {"MARKET", "SL-M"} and body["price"]:
            self.violation("place: a price on a market order")
        instrument = self.market.get(body["instrument_token"])
        if instrument is None:
            raise UpstoxError(400, "UDAPI1052", "Invalid instrument key")
        order_id = str(next(self._order_ids))
        order = {
            "exchange": instrument.exchange,
            "product": body["product"],
            "price": body["price"],
            "quantity": body["quantity"],
            "status": "trigger pending" if kind in {"SL", "SL-M"} else "open",
            "guid": None,
            "tag": body.get("tag"),
            "instrument_token": instrument.key,
            "placed_by": USER_ID,
            "tradingsymbol": instrument.symbol,
            "trading_symbol": instrument.symbol,
            "order_type": kind,
            "validity": body["validity"],
            "trigger_price": body["trigger_price"],
            "disclosed_quantity": body["disclosed_quantity"],
            "transaction_type": body["transaction_type"],
            "average_price": 0,
            "filled_quantity": 0,
            "pending_quantity": body["quantity"],
            "status_message": None,
            "status_message_raw": None,
            "exchange_order_id": str(1100000000000000 + int(order_id) % 10**9),
            "parent_order_id": None,
            "order_id": order_id,
            "variety": "SIMPLE",
            "order_timestamp": _stamp(),
            "exchange_timestamp": _stamp(),
            "is_amo": body["is_amo"],
            "order_request_id": "1",
            "order_ref_id": f"ref-{order_id}",
        }
        self.orders[order_id] = order
        if kind == "MARKET":
            self._fill(order, instrument.ltp)
        return order_id

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise UpstoxError(400, "UDAPI100010", "Order not found")
        return order

    def _modify(self, recorded: Recorded) -> str:
        body = self._check("modify", recorded.body, MODIFY_FIELDS, MODIFY_OPTIONAL)
        order = self._order(body["order_id"])
        if order["status"] not in {"open", "trigger pending"}:
            raise UpstoxError(400, "UDAPI100040", "Order is not open: it cannot be modified")
        kind = body["order_type"]
        if kind in {"LIMIT", "SL"} and not body["price"]:
            self.violation("modify: a LIMIT or SL order without its price")
        if kind in {"SL", "SL-M"} and not body["trigger_price"]:
            self.violation("modify: a stop order without its trigger price")
        quantity = body.get("quantity", order["quantity"])
        order.update(
            order_type=kind,
            validity=body["validity"],
            price=body["price"],
            trigger_price=body["trigger_price"],
            quantity=quantity,
            pending_quantity=quantity - order["filled_quantity"],
        )
        return order["order_id"]

    def _cancel(self, query: Mapping[str, str]) -> str:
        if set(query) != {"order_id"}:
            self.violation(f"cancel: query {sorted(query)}")
        order = self._order(query.get("order_id", ""))
        if order["status"] not in {"open", "trigger pending"}:
            raise UpstoxError(400, "UDAPI100041", "Order is not open: it cannot be cancelled")
        order.update(status="cancelled", pending_quantity=0)
        return order["order_id"]

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        quantity = order["pending_quantity"]
        order.update(
            status="complete", filled_quantity=order["quantity"], pending_quantity=0, average_price=float(price)
        )
        self._position(order, quantity, price)
        self.trades.append(
            {
                "exchange": order["exchange"],
                "product": order["product"],
                "trading_symbol": order["trading_symbol"],
                "tradingsymbol": order["trading_symbol"],
                "instrument_token": order["instrument_token"],
                "order_type": order["order_type"],
                "transaction_type": order["transaction_type"],
                "quantity": quantity,
                "exchange_order_id": order["exchange_order_id"],
                "order_id": order["order_id"],
                "exchange_timestamp": _stamp(),
                "average_price": float(price),
                "trade_id": str(next(self._trade_ids)),
                "order_ref_id": order["order_ref_id"],
                "order_timestamp": order["order_timestamp"],
            }
        )

    def _position(self, order: dict[str, Any], quantity: int, price: Decimal) -> None:
        """The day's net position in the order's instrument and product, moved by one fill."""
        signed = quantity if order["transaction_type"] == "BUY" else -quantity
        for position in self.positions:
            if (position["instrument_token"], position["product"]) == (order["instrument_token"], order["product"]):
                break
        else:
            position = {
                "exchange": order["exchange"],
                "multiplier": 1.0,
                "value": 0.0,
                "pnl": 0.0,
                "product": order["product"],
                "instrument_token": order["instrument_token"],
                "average_price": 0.0,
                "buy_value": 0.0,
                "overnight_quantity": 0,
                "day_buy_value": 0.0,
                "day_buy_price": 0.0,
                "overnight_buy_amount": 0.0,
                "overnight_buy_quantity": 0,
                "day_buy_quantity": 0,
                "day_sell_value": 0.0,
                "day_sell_price": 0.0,
                "overnight_sell_amount": 0.0,
                "overnight_sell_quantity": 0,
                "day_sell_quantity": 0,
                "quantity": 0,
                "last_price": float(price),
                "unrealised": 0.0,
                "realised": 0.0,
                "sell_value": 0.0,
                "trading_symbol": order["trading_symbol"],
                "tradingsymbol": order["trading_symbol"],
                "close_price": float(price),
                "buy_price": 0.0,
                "sell_price": 0.0,
            }
            self.positions.append(position)
        side = "buy" if signed > 0 else "sell"
        position[f"day_{side}_quantity"] += quantity
        position[f"day_{side}_value"] += float(price) * quantity
        position["quantity"] += signed
        position["average_price"] = float(price) if position["quantity"] else 0.0

    def _quotes(self, query: Mapping[str, str]) -> dict[str, Any]:
        if set(query) != {"symbol"}:
            self.violation(f"quote: query {sorted(query)}")
        keys = query.get("symbol", "").split(",")
        if not keys or len(keys) > 500 or not all(_KEY.fullmatch(k) for k in keys):
            self.violation(f"quote: symbol {query.get('symbol', '')[:60]!r}")
            raise UpstoxError(400, "UDAPI100036", "Invalid Input")
        out = {}
        for key in keys:
            instrument = self.market.get(key)
            if instrument is None:
                continue
            ltp = float(instrument.ltp)
            out[f"{key.split('|')[0]}:{instrument.symbol}"] = {
                "ohlc": {"open": ltp, "high": ltp, "low": ltp, "close": ltp},
                "depth": {
                    "buy": [{"quantity": 10, "price": round(ltp - 0.05, 2), "orders": 1}],
                    "sell": [{"quantity": 12, "price": round(ltp + 0.05, 2), "orders": 2}],
                },
                "timestamp": datetime.now(IST).isoformat(),
                "instrument_token": key,
                "symbol": instrument.symbol,
                "last_price": ltp,
                "volume": 1000,
                "average_price": ltp,
                "oi": 0,
                "net_change": 0,
                "total_buy_quantity": 10,
                "total_sell_quantity": 12,
                "lower_circuit_limit": round(ltp * 0.8, 2),
                "upper_circuit_limit": round(ltp * 1.2, 2),
                "last_trade_time": str(int(time.time() * 1000)),
                "oi_day_high": 0,
                "oi_day_low": 0,
            }
        return out

    # --- websockets -------------------------------------------------------------------------------
    def ws_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path not in {MARKET_PATH, PORTFOLIO_PATH}:
            self.violation(f"websocket path {path!r}")
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}" or not self.token_valid:
            if not (request.headers.get("Authorization") or "").startswith("Bearer "):
                self.violation(f"websocket {path}: no Bearer authorization")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid token used to access API\n")
        return None

    def stream_for(self, socket: ServerConnection) -> Stream:
        assert socket.request is not None
        split = urlsplit(socket.request.path)
        if split.path == MARKET_PATH:
            return Stream(socket=socket, kind="market")
        self.portfolio_queries.append(split.query)
        update_types = dict(parse_qsl(split.query)).get("update_types", "order")
        if not set(update_types.split(",")) <= {"order", "position", "holding", "gtt_order"}:
            self.violation(f"portfolio stream: update_types={update_types!r}")
        return Stream(socket=socket, kind="portfolio")

    async def on_message(self, stream: Stream, message: str | bytes) -> None:
        if stream.kind == "market":
            self._ws_request(message)
        else:
            self.violation("portfolio stream: the client sent a message")

    def _ws_request(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.violation("market feed: a request sent as a text frame (Upstox reads binary frames)")
        try:
            request = json.loads(message)
            data = request["data"]
            valid = (
                set(request) == {"guid", "method", "data"}
                and isinstance(request["guid"], str)
                and request["method"] in {"sub", "unsub", "change_mode"}
                and isinstance(data, dict)
                and isinstance(data.get("instrumentKeys"), list)
                and all(isinstance(k, str) and _KEY.fullmatch(k) for k in data["instrumentKeys"])
                and (data.get("mode") in MODES or (request["method"] == "unsub" and "mode" not in data))
            )
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            self.violation(f"market feed: request {message[:120]!r}")
            return
        self.subscriptions.append(request)


def tick_message(token: str, ltp: Decimal) -> bytes:
    """A live FeedResponse with one instrument's full feed at ``ltp`` (built from the wire format)."""
    price = float(ltp)
    now = int(time.time() * 1000)
    market = feed_wire.Market(
        ltp=price,
        ltt=now,
        ltq=1,
        cp=price,
        depth=[(10, round(price - 0.05, 2), 12, round(price + 0.05, 2))],
        day=(price, price, price, price),
        vtt=1000,
    )
    return feed_wire.response({token: market.feed()}, current_ts=now)


def _segment() -> dict[str, Any]:
    return {
        "used_margin": 2500.25,
        "payin_amount": 0,
        "span_margin": 0,
        "adhoc_margin": 0,
        "notional_cash": 0,
        "available_margin": 97499.75,
        "exposure_margin": 0,
    }


class _Handler(LocalHandler):
    local: UpstoxServer

    def _handle(self) -> None:
        server = self.local
        split = urlsplit(self.path)
        query = parse_qsl(split.query, keep_blank_values=True)
        if split.path == "/v2/login/authorization/dialog" and self.command == "GET":
            try:
                location = server.login_redirect(dict(query))
            except UpstoxError as exc:
                self.send(exc.status, error_body(exc.code, exc.message))
                return
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if split.path == "/assets/complete.json.gz" and self.command == "GET":
            self.send(200, server.master, "application/gzip")
            return
        raw = self.read_body()
        on_hft = split.path.startswith("/hft/")
        path = split.path[len("/hft") :] if on_hft else split.path
        route = server.route(self.command, path)
        headers = self.header_map()
        if route is None:
            server.violation(f"unknown route {self.command} {split.path}")
            self.send(404, error_body("UDAPI10000", "This request is not supported by Upstox API"))
            return
        call, hft = route
        body: Any = None
        if "form-urlencoded" in headers.get("content-type", ""):
            body = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            if "application/json" not in headers.get("content-type", ""):
                server.violation(f"{call}: a JSON body without Content-Type application/json")
        elif self.command in {"POST", "PUT"}:
            server.violation(f"{call}: no body")
        recorded = self.record(call, body, raw, path=path, query=dict(query))
        fault = server.take_fault(call)
        if self.answer_fault(fault):
            return
        try:
            status, payload = 200, server.serve(call, recorded, hft=hft, on_hft=on_hft)
        except UpstoxError as exc:
            status, payload = exc.status, error_body(exc.code, exc.message)
        if fault == "timeout":
            self.hang()
            return
        self.send(status, payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        """Upstox's answer in place of serving; None for a fault that serves first (timeout)."""
        answers = {
            "http_500": (500, error_body("UDAPI100500", "Something went wrong... please contact us")),
            "malformed": (200, b'{"unexpected": ["not", "the envelope"]}'),
            "truncated": (200, b'{"status": "success", "data": {"order_ids": ["2501'),
            "rate_limited": (429, error_body("UDAPI10005", "Too Many Request Sent")),
            "session_expired": (401, error_body("UDAPI100050", "Invalid token used to access API")),
            "rejected": (400, error_body("UDAPI100036", REJECT_MESSAGE)),
        }
        if fault == "timeout":
            return None
        status, payload = answers[fault]
        return status, payload, "application/json"
