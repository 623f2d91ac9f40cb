"""A local Kite Connect v3 server for tests, written from the public documentation.

It listens on loopback only, records every request (method, path, query, headers, form fields) for
tests to assert, answers in Kite's envelopes (``{"status": "success", "data": ...}`` and
``{"status": "error", "message": ..., "error_type": ...}``) and keeps a small, coherent book: a placed
order shows in the order book and its history, a MARKET order fills at once (a trade), a LIMIT order
rests OPEN until modified or cancelled, GTTs are kept in a GTT book. The payloads are fixtures written
for these tests; the field names follow https://kite.trade/docs/connect/v3/.

Faults on demand (``fail``, ``lose_answer``): any status with any body (5xx, 429, a TokenException,
malformed or truncated JSON), an answer that never comes after the request was processed (the order
exists, the client times out), and a connection dropped before or after processing. ``latency``
delays every answer (a benchmark uses 200 ms); ``answers`` has when each request was received and
answered, so a benchmark can take the broker's own time out of its latencies.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

API_KEY = "fakeapikey01"
API_SECRET = "fake-api-secret-0123456789"
REQUEST_TOKEN = "fakerequesttoken42"
ACCESS_TOKEN = "fake-access-token-abcdef"
PUBLIC_TOKEN = "fake-public-token"
REFRESH_TOKEN = "fake-refresh-token"

STAMP = "2026-12-07 09:15:00"  # IST wall clock, as Kite writes it

INSTRUMENTS_CSV = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange\n"
    '408065,1594,INFY,"INFOSYS",0,,0,0.05,1,EQ,NSE,NSE\n'
    '738561,2885,RELIANCE,"RELIANCE INDUSTRIES",0,,0,0.1,1,EQ,NSE,NSE\n'
    "256265,1001,NIFTY 50,,0,,0,0,0,EQ,INDICES,NSE\n"
    "12345602,48225,NIFTY26DEC24000CE,NIFTY,0,2026-12-31,24000,0.05,75,CE,NFO-OPT,NFO\n"
)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    form: list[tuple[str, str]]
    body: bytes

    @property
    def form_dict(self) -> dict[str, str]:
        return dict(self.form)

    @property
    def query_dict(self) -> dict[str, str]:
        return dict(self.query)


@dataclass(frozen=True)
class Answer:
    """A served request: received (its body read) and answered (its answer written), ``time.perf_counter``."""

    recorded: Recorded
    received: float
    answered: float
    status: int
    body: bytes


@dataclass
class Fault:
    method: str | None
    path: str | None
    action: str  # "respond", "hang", "drop"
    process: bool  # run the request against the book first
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or path.startswith(self.path))


class KiteError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def envelope_error(error_type: str, message: str) -> bytes:
    return json.dumps({"status": "error", "message": message, "data": None, "error_type": error_type}).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


@dataclass
class FakeKite:
    latency: float = 0.0
    hang_seconds: float = 10.0
    requests: list[Recorded] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    gtts: dict[int, dict[str, Any]] = field(default_factory=dict)
    # EXCHANGE:SYMBOL -> (instrument_token, last price)
    market: dict[str, tuple[int, Decimal]] = field(
        default_factory=lambda: {
            "NSE:INFY": (408065, Decimal("1500.5")),
            "NSE:RELIANCE": (738561, Decimal("2900.1")),
        }
    )
    cash: Decimal | None = None  # when set, an order worth more is REJECTED for want of funds
    access_token_valid: bool = True
    # Where Kite's login page sends the user back (the Kite app's registered redirect URL).
    redirect_url: str = "http://127.0.0.1/brokers/kite/callback/"

    def __post_init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._order_ids = itertools.count(151220000000001)
        self._trade_ids = itertools.count(10000001)
        self._gtt_ids = itertools.count(100)
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeKite:
        fake = self

        class Handler(_Handler):
            kite = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- what tests use --------------------------------------------------------------------------

    def fail(
        self,
        *,
        status: int = 500,
        error_type: str | None = None,
        message: str = "Something went wrong",
        body: bytes | None = None,
        content_type: str = "application/json",
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next matching request(s) with this status and body instead of serving them."""
        if body is None:
            body = envelope_error(error_type, message) if error_type else b""
        self._add(Fault(method, path, "respond", False, status, body, content_type, times))

    def lose_answer(self, *, method: str | None = None, path: str | None = None, drop: bool = False, process=True):
        """Serve the next matching request (the order is accepted), then never answer (``drop``: close
        the connection instead). ``process=False``: lose it before serving."""
        self._add(Fault(method, path, "drop" if drop else "hang", process))

    def login_redirect(self, query: dict[str, str]) -> str:
        """Where the login page sends a user who signs in: the redirect URL with a request token, the
        login's outcome and the app's ``redirect_params`` (as Kite Connect's login flow does)."""
        if query.get("api_key") != API_KEY or query.get("v") != "3":
            raise KiteError(400, "InputException", "Invalid api_key")
        params = [("action", "login"), ("type", "login"), ("status", "success"), ("request_token", REQUEST_TOKEN)]
        params += parse_qsl(query.get("redirect_params", ""), keep_blank_values=True)
        return f"{self.redirect_url}?{urlencode(params)}"

    def postback(self, order_id: str, *, api_secret: str = API_SECRET, user_id: str = "AB1234") -> bytes:
        """The postback Kite would send for the order as it stands: its order-book entry with
        ``user_id``, ``app_id`` and checksum = SHA-256(order_id + order_timestamp + api_secret)."""
        with self._lock:
            order = dict(self.orders[order_id])
        checksum = hashlib.sha256((order_id + order["order_timestamp"] + api_secret).encode()).hexdigest()
        body = {**order, "user_id": user_id, "app_id": 1234, "checksum": checksum, "unfilled_quantity": 0}
        return json.dumps(body, default=_json_default).encode()

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def last(self, method: str | None = None, path: str | None = None) -> Recorded:
        for recorded in reversed(self.requests):
            if (method is None or recorded.method == method) and (path is None or recorded.path == path):
                return recorded
        raise LookupError(f"no {method} {path} request")

    def fill(self, order_id: str, price: Decimal | None = None) -> None:
        """Fill a resting order completely (as the exchange would)."""
        with self._lock:
            order = self.orders[order_id]
            self._fill(order, price if price is not None else order["price"])

    def cancel_at_exchange(self, order_id: str) -> None:
        """Cancel a resting order's remainder as the exchange would (an IOC's, or at the day's end)."""
        with self._lock:
            order = self.orders[order_id]
            self._set(order, status="CANCELLED", cancelled_quantity=order["pending_quantity"], pending_quantity=0)

    # --- internals -----------------------------------------------------------------------------

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def _answered(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def _authorised(self, recorded: Recorded) -> bool:
        return self.access_token_valid and recorded.headers.get("authorization") == f"token {API_KEY}:{ACCESS_TOKEN}"

    def serve(self, recorded: Recorded) -> tuple[int, bytes, str]:
        if recorded.headers.get("x-kite-version") != "3":
            raise KiteError(400, "InputException", "Missing or invalid X-Kite-Version header")
        method, path = recorded.method, recorded.path
        if path == "/session/token" and method == "POST":
            return self._ok(self._session(recorded.form_dict))
        if not path.startswith("/instruments") and not self._authorised(recorded):
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        if path.startswith("/instruments"):
            return 200, gzip.compress(INSTRUMENTS_CSV.encode()), "text/csv"
        route = self._route(method, path)
        if route is None:
            raise KiteError(404, "GeneralException", "Route not found")
        handler, args = route
        with self._lock:
            return self._ok(handler(recorded, *args))

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], tuple[str, ...]] | None:
        parts = [p for p in path.split("/") if p]
        table: list[tuple[str, tuple[str, ...], Callable[..., Any]]] = [
            ("DELETE", ("session", "token"), self._logout),
            ("GET", ("user", "profile"), lambda r: _profile()),
            ("GET", ("user", "margins"), lambda r: {"equity": _segment(), "commodity": _segment()}),
            ("GET", ("user", "margins", "*"), lambda r, s: _segment()),
            ("GET", ("orders",), lambda r: list(self.orders.values())),
            ("GET", ("trades",), lambda r: list(self.trades)),
            ("GET", ("orders", "*", "trades"), self._order_trades),
            ("GET", ("orders", "*"), self._order_history),
            ("POST", ("orders", "*"), self._place),
            ("PUT", ("orders", "*", "*"), self._modify),
            ("DELETE", ("orders", "*", "*"), self._cancel),
            ("GET", ("portfolio", "positions"), lambda r: {"net": [_position()], "day": []}),
            ("GET", ("portfolio", "holdings"), lambda r: [_holding()]),
            ("GET", ("quote",), self._quote),
            ("GET", ("quote", "ltp"), self._ltp),
            ("GET", ("quote", "ohlc"), self._ohlc),
            ("GET", ("gtt", "triggers"), lambda r: list(self.gtts.values())),
            ("POST", ("gtt", "triggers"), self._gtt_place),
            ("GET", ("gtt", "triggers", "*"), self._gtt_get),
            ("PUT", ("gtt", "triggers", "*"), self._gtt_modify),
            ("DELETE", ("gtt", "triggers", "*"), self._gtt_delete),
        ]
        for route_method, pattern, handler in table:
            if route_method != method or len(pattern) != len(parts):
                continue
            if all(p == "*" or p == part for p, part in zip(pattern, parts, strict=True)):
                return handler, tuple(part for p, part in zip(pattern, parts, strict=True) if p == "*")
        return None

    @staticmethod
    def _ok(data: Any) -> tuple[int, bytes, str]:
        return 200, json.dumps({"status": "success", "data": data}, default=_json_default).encode(), "application/json"

    # session

    def _session(self, form: dict[str, str]) -> dict[str, Any]:
        expected = hashlib.sha256((API_KEY + REQUEST_TOKEN + API_SECRET).encode()).hexdigest()
        if form.get("api_key") != API_KEY or form.get("request_token") != REQUEST_TOKEN:
            raise KiteError(403, "TokenException", "Token is invalid or has expired.")
        if form.get("checksum") != expected:
            raise KiteError(403, "TokenException", "Invalid checksum")
        self.access_token_valid = True
        return {
            **_profile(),
            "api_key": API_KEY,
            "access_token": ACCESS_TOKEN,
            "public_token": PUBLIC_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "enctoken": "fake-enctoken",
            "login_time": STAMP,
            "meta": {"demat_consent": "consent"},
            "avatar_url": None,
        }

    def _logout(self, recorded: Recorded) -> bool:
        query = recorded.query_dict
        if query.get("api_key") != API_KEY or query.get("access_token") != ACCESS_TOKEN:
            raise KiteError(403, "TokenException", "Invalid session")
        self.access_token_valid = False
        return True

    # orders

    def _place(self, recorded: Recorded, variety: str) -> dict[str, str]:
        form = recorded.form_dict
        if variety not in {"regular", "amo", "co", "iceberg", "auction"}:
            raise KiteError(400, "InputException", "Invalid variety")
        for name in ("exchange", "tradingsymbol", "transaction_type", "quantity", "product", "order_type"):
            if not form.get(name):
                raise KiteError(400, "InputException", f"Missing {name}")
        if len(form.get("tag", "")) > 20:
            raise KiteError(400, "InputException", "Tag length exceeds 20")
        instrument = f"{form['exchange']}:{form['tradingsymbol']}"
        token, ltp = self.market.get(instrument, (0, Decimal("100")))
        quantity = int(form["quantity"])
        price = Decimal(form.get("price", "0"))
        order_id = str(next(self._order_ids))
        order = {
            "order_id": order_id,
            "parent_order_id": None,
            "exchange_order_id": None,
            "placed_by": "AB1234",
            "variety": variety,
            "status": "OPEN",
            "status_message": None,
            "status_message_raw": None,
            "tradingsymbol": form["tradingsymbol"],
            "exchange": form["exchange"],
            "instrument_token": token,
            "transaction_type": form["transaction_type"],
            "order_type": form["order_type"],
            "product": form["product"],
            "validity": form.get("validity", "DAY"),
            "validity_ttl": 0,
            "quantity": quantity,
            "disclosed_quantity": int(form.get("disclosed_quantity", 0)),
            "price": price,
            "trigger_price": Decimal(form.get("trigger_price", "0")),
            "average_price": Decimal(0),
            "filled_quantity": 0,
            "pending_quantity": quantity,
            "cancelled_quantity": 0,
            "market_protection": int(form.get("market_protection", 0)),
            "meta": {},
            "tag": form.get("tag"),
            "tags": [form["tag"]] if form.get("tag") else [],
            "guid": f"fake-{order_id}",
            "modified": False,
            "order_timestamp": STAMP,
            "exchange_timestamp": None,
            "exchange_update_timestamp": None,
        }
        self.orders[order_id] = order
        self.history[order_id] = [{**order, "status": "PUT ORDER REQ RECEIVED"}]
        value = quantity * (price or ltp)
        if self.cash is not None and value > self.cash:
            self._set(order, status="REJECTED", pending_quantity=0)
            order["status_message"] = (
                f"Insufficient funds. Required margin is {value} but available margin is {self.cash}."
            )
            order["status_message_raw"] = "RMS:Margin Exceeds"
        elif form["order_type"] == "MARKET":
            self._set(order, status="OPEN", exchange_order_id=f"1{order_id[-9:]}", exchange_timestamp=STAMP)
            self._fill(order, ltp)
        elif form["order_type"] in {"SL", "SL-M"}:
            self._set(order, status="TRIGGER PENDING", exchange_order_id=f"1{order_id[-9:]}", exchange_timestamp=STAMP)
        else:
            self._set(order, status="OPEN", exchange_order_id=f"1{order_id[-9:]}", exchange_timestamp=STAMP)
        return {"order_id": order_id}

    def _set(self, order: dict[str, Any], **changes: Any) -> None:
        order.update(changes)
        self.history[order["order_id"]].append(dict(order))

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        quantity = order["pending_quantity"]
        self.trades.append(
            {
                "trade_id": str(next(self._trade_ids)),
                "order_id": order["order_id"],
                "exchange": order["exchange"],
                "tradingsymbol": order["tradingsymbol"],
                "instrument_token": order["instrument_token"],
                "product": order["product"],
                "average_price": price,
                "quantity": quantity,
                "exchange_order_id": order["exchange_order_id"],
                "transaction_type": order["transaction_type"],
                "fill_timestamp": STAMP,
                "order_timestamp": STAMP[-8:],
                "exchange_timestamp": STAMP,
            }
        )
        self._set(
            order,
            status="COMPLETE",
            filled_quantity=order["filled_quantity"] + quantity,
            pending_quantity=0,
            average_price=price,
            exchange_update_timestamp=STAMP,
        )

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise KiteError(404, "InputException", "Order not found")
        return order

    def _modify(self, recorded: Recorded, variety: str, order_id: str) -> dict[str, str]:
        order = self._order(order_id)
        if order["status"] not in {"OPEN", "TRIGGER PENDING"}:
            raise KiteError(400, "OrderException", f"Order cannot be modified as it is {order['status'].lower()}.")
        form = recorded.form_dict
        changes: dict[str, Any] = {"modified": True}
        for name in ("price", "trigger_price"):
            if name in form:
                changes[name] = Decimal(form[name])
        if "quantity" in form:
            changes["quantity"] = int(form["quantity"])
            changes["pending_quantity"] = int(form["quantity"]) - order["filled_quantity"]
        if "order_type" in form:
            changes["order_type"] = form["order_type"]
        self._set(order, status="MODIFIED", **changes)
        self._set(order, status="OPEN")
        return {"order_id": order_id}

    def _cancel(self, recorded: Recorded, variety: str, order_id: str) -> dict[str, str]:
        order = self._order(order_id)
        if order["status"] not in {"OPEN", "TRIGGER PENDING"}:
            raise KiteError(400, "OrderException", f"Order cannot be cancelled as it is {order['status'].lower()}.")
        self._set(order, status="CANCELLED", cancelled_quantity=order["pending_quantity"], pending_quantity=0)
        return {"order_id": order_id}

    def _order_history(self, recorded: Recorded, order_id: str) -> list[dict[str, Any]]:
        self._order(order_id)
        return self.history[order_id]

    def _order_trades(self, recorded: Recorded, order_id: str) -> list[dict[str, Any]]:
        self._order(order_id)
        return [t for t in self.trades if t["order_id"] == order_id]

    # quotes

    def _asked(self, recorded: Recorded) -> list[tuple[str, int, Decimal]]:
        asked = [value for name, value in recorded.query if name == "i"]
        return [(i, *self.market[i]) for i in asked if i in self.market]

    def _quote(self, recorded: Recorded) -> dict[str, Any]:
        return {
            i: {
                "instrument_token": token,
                "timestamp": STAMP,
                "last_trade_time": STAMP,
                "last_price": ltp,
                "last_quantity": 5,
                "buy_quantity": 1200,
                "sell_quantity": 900,
                "volume": 123456,
                "average_price": ltp - 1,
                "oi": 0,
                "oi_day_high": 0,
                "oi_day_low": 0,
                "net_change": 0,
                "lower_circuit_limit": ltp * Decimal("0.8"),
                "upper_circuit_limit": ltp * Decimal("1.2"),
                "ohlc": _ohlc(ltp),
                "depth": {
                    "buy": [{"price": ltp - Decimal("0.05"), "quantity": 10, "orders": 2}],
                    "sell": [{"price": ltp + Decimal("0.05"), "quantity": 7, "orders": 1}],
                },
            }
            for i, token, ltp in self._asked(recorded)
        }

    def _ltp(self, recorded: Recorded) -> dict[str, Any]:
        return {i: {"instrument_token": token, "last_price": ltp} for i, token, ltp in self._asked(recorded)}

    def _ohlc(self, recorded: Recorded) -> dict[str, Any]:
        return {
            i: {"instrument_token": token, "last_price": ltp, "ohlc": _ohlc(ltp)}
            for i, token, ltp in self._asked(recorded)
        }

    # GTT

    def _gtt_body(self, form: dict[str, str], trigger_id: int) -> dict[str, Any]:
        try:
            condition = json.loads(form["condition"])
            orders = json.loads(form["orders"])
        except (KeyError, ValueError) as exc:
            raise KiteError(400, "InputException", "Invalid condition or orders") from exc
        kind = form.get("type")
        legs = {"single": 1, "two-leg": 2}.get(kind or "")
        if legs is None or len(condition.get("trigger_values", [])) != legs or len(orders) != legs:
            raise KiteError(400, "InputException", "Invalid trigger type or legs")
        token, _ = self.market.get(f"{condition['exchange']}:{condition['tradingsymbol']}", (0, Decimal(0)))
        return {
            "id": trigger_id,
            "user_id": "AB1234",
            "parent_trigger": None,
            "type": kind,
            "created_at": STAMP,
            "updated_at": STAMP,
            "expires_at": "2027-12-07 09:15:00",
            "status": "active",
            "condition": {**condition, "instrument_token": token},
            "orders": [{**o, "result": None} for o in orders],
            "meta": None,
        }

    def _gtt_place(self, recorded: Recorded) -> dict[str, int]:
        trigger_id = next(self._gtt_ids)
        self.gtts[trigger_id] = self._gtt_body(recorded.form_dict, trigger_id)
        return {"trigger_id": trigger_id}

    def _gtt(self, trigger_id: str) -> dict[str, Any]:
        gtt = self.gtts.get(int(trigger_id)) if trigger_id.isdigit() else None
        if gtt is None:
            raise KiteError(404, "InputException", "Trigger not found")
        return gtt

    def _gtt_get(self, recorded: Recorded, trigger_id: str) -> dict[str, Any]:
        return self._gtt(trigger_id)

    def _gtt_modify(self, recorded: Recorded, trigger_id: str) -> dict[str, int]:
        self._gtt(trigger_id)
        self.gtts[int(trigger_id)] = self._gtt_body(recorded.form_dict, int(trigger_id))
        return {"trigger_id": int(trigger_id)}

    def _gtt_delete(self, recorded: Recorded, trigger_id: str) -> dict[str, int]:
        self._gtt(trigger_id)
        del self.gtts[int(trigger_id)]
        return {"trigger_id": int(trigger_id)}


def _profile() -> dict[str, Any]:
    return {
        "user_id": "AB1234",
        "user_type": "individual",
        "email": "trader@example.com",
        "user_name": "Test Trader",
        "user_shortname": "Trader",
        "broker": "ZERODHA",
        "exchanges": ["NSE", "NFO", "BSE"],
        "products": ["CNC", "NRML", "MIS"],
        "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        "avatar_url": None,
        "meta": {"demat_consent": "consent"},
    }


def _segment() -> dict[str, Any]:
    return {
        "enabled": True,
        "net": Decimal("99725.05"),
        "available": {
            "adhoc_margin": 0,
            "cash": Decimal("245431.6"),
            "opening_balance": Decimal("245431.6"),
            "live_balance": Decimal("99725.05"),
            "collateral": 0,
            "intraday_payin": 0,
        },
        "utilised": {
            "debits": Decimal("145706.55"),
            "exposure": Decimal("38981.25"),
            "m2m_realised": Decimal("761.7"),
            "m2m_unrealised": 0,
            "option_premium": 0,
            "payout": 0,
            "span": Decimal("101989"),
            "holding_sales": 0,
            "turnover": 0,
            "liquid_collateral": 0,
            "stock_collateral": 0,
            "delivery": 0,
        },
    }


def _position() -> dict[str, Any]:
    return {
        "tradingsymbol": "INFY",
        "exchange": "NSE",
        "instrument_token": 408065,
        "product": "MIS",
        "quantity": 10,
        "overnight_quantity": 0,
        "multiplier": 1,
        "average_price": Decimal("1498.25"),
        "close_price": 0,
        "last_price": Decimal("1500.5"),
        "value": Decimal("-14982.5"),
        "pnl": Decimal("22.5"),
        "m2m": Decimal("22.5"),
        "unrealised": Decimal("22.5"),
        "realised": 0,
        "buy_quantity": 10,
        "buy_price": Decimal("1498.25"),
        "buy_value": Decimal("14982.5"),
        "buy_m2m": Decimal("14982.5"),
        "sell_quantity": 0,
        "sell_price": 0,
        "sell_value": 0,
        "sell_m2m": 0,
        "day_buy_quantity": 10,
        "day_buy_price": Decimal("1498.25"),
        "day_buy_value": Decimal("14982.5"),
        "day_sell_quantity": 0,
        "day_sell_price": 0,
        "day_sell_value": 0,
    }


def _holding() -> dict[str, Any]:
    return {
        "tradingsymbol": "RELIANCE",
        "exchange": "NSE",
        "instrument_token": 738561,
        "isin": "INE002A01018",
        "product": "CNC",
        "price": 0,
        "quantity": 4,
        "used_quantity": 0,
        "t1_quantity": 1,
        "realised_quantity": 4,
        "authorised_quantity": 0,
        "authorised_date": STAMP,
        "opening_quantity": 4,
        "collateral_quantity": 0,
        "collateral_type": "",
        "discrepancy": False,
        "average_price": Decimal("2450.75"),
        "last_price": Decimal("2900.1"),
        "close_price": Decimal("2890"),
        "pnl": Decimal("1797.4"),
        "day_change": Decimal("10.1"),
        "day_change_percentage": Decimal("0.349"),
    }


def _ohlc(ltp: Decimal) -> dict[str, Decimal]:
    return {"open": ltp - 5, "high": ltp + 10, "low": ltp - 12, "close": ltp - 3}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # one write per answer (flushed after each request)
    kite: FakeKite

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        fake = self.kite
        split = urlsplit(self.path)
        if split.path == "/connect/login" and self.command == "GET":  # the browser's login page
            try:
                location = fake.login_redirect(dict(parse_qsl(split.query)))
            except KiteError as exc:
                self._send(exc.status, envelope_error(exc.error_type, exc.message), "application/json")
                return
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = time.perf_counter()
        recorded = Recorded(
            method=self.command,
            path=split.path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            form=parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            if "form-urlencoded" in self.headers.get("Content-Type", "")
            else [],
            body=body,
        )
        fake._record(recorded)
        if fake.latency:
            time.sleep(fake.latency)
        fault = fake._take_fault(recorded.method, recorded.path)
        if fault is not None and fault.action == "respond":
            self._send(fault.status, fault.body, fault.content_type)
            return
        if fault is not None and not fault.process:
            self._lose(fault)
            return
        try:
            status, payload, content_type = fake.serve(recorded)
        except KiteError as exc:
            status, payload, content_type = exc.status, envelope_error(exc.error_type, exc.message), "application/json"
        if fault is not None:
            self._lose(fault)
            return
        self._send(status, payload, content_type)
        self.wfile.flush()
        fake._answered(Answer(recorded, received, time.perf_counter(), status, payload))

    def _lose(self, fault: Fault) -> None:
        if fault.action == "hang":
            self.kite._stop.wait(self.kite.hang_seconds)
        self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if body[:2] == b"\x1f\x8b":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle
