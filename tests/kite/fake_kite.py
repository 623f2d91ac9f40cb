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

One Kite user per session: ``ACCESS_TOKEN`` sees the whole book (as the tests have always used it),
and a token ``<ACCESS_TOKEN>.<user>`` (``user_token``) is another user's session, whose order book and
trades hold only the orders placed with it, as each Kite user has their own (a soak's accounts).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.kite.fake_kite_parts import (
    ACCESS_TOKEN,
    API_KEY,
    API_SECRET,
    INSTRUMENTS_CSV,
    PUBLIC_TOKEN,
    REFRESH_TOKEN,
    REQUEST_TOKEN,
    STAMP,
    Answer,
    Fault,
    KiteError,
    Recorded,
    _Handler,
    _holding,
    _json_default,
    _ohlc,
    _position,
    _profile,
    _segment,
    envelope_error,
)

# The most days one historical request may span, per interval (Zerodha's answers on the Kite forum).
HISTORICAL_DAYS = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}


def user_token(user: str) -> str:
    """The access token of Kite user ``user``'s own session (see the module)."""
    return f"{ACCESS_TOKEN}.{user}"


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
    # instrument_token -> its 1-minute bars, [ISO time with +0530, open, high, low, close, volume, oi],
    # served by GET /instruments/historical/:token/minute between from and to (both inclusive, IST)
    history: dict[int, list[list[Any]]] = field(default_factory=dict)
    instruments_csv: str = INSTRUMENTS_CSV  # the instruments dump served (gzipped) at /instruments
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
        self._owners: dict[str, str] = {}  # order id -> the user (``user_token``) who placed it

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
        header = recorded.headers.get("authorization") or ""
        token = header.removeprefix(f"token {API_KEY}:") if header.startswith(f"token {API_KEY}:") else ""
        return self.access_token_valid and (token == ACCESS_TOKEN or token.startswith(f"{ACCESS_TOKEN}."))

    @staticmethod
    def _user(recorded: Recorded) -> str:
        """The user whose session made the request: "" for ``ACCESS_TOKEN`` (it sees every order)."""
        token = (recorded.headers.get("authorization") or "").rpartition(":")[2]
        return token.removeprefix(f"{ACCESS_TOKEN}.") if token.startswith(f"{ACCESS_TOKEN}.") else ""

    def _book(self, recorded: Recorded) -> list[dict[str, Any]]:
        user = self._user(recorded)
        return [o for o in self.orders.values() if not user or self._owners.get(o["order_id"]) == user]

    def _tradebook(self, recorded: Recorded) -> list[dict[str, Any]]:
        user = self._user(recorded)
        return [t for t in self.trades if not user or self._owners.get(t["order_id"]) == user]

    def serve(self, recorded: Recorded) -> tuple[int, bytes, str]:
        if recorded.headers.get("x-kite-version") != "3":
            raise KiteError(400, "InputException", "Missing or invalid X-Kite-Version header")
        method, path = recorded.method, recorded.path
        if path == "/session/token" and method == "POST":
            return self._ok(self._session(recorded.form_dict))
        historical = path.startswith("/instruments/historical/")
        if (historical or not path.startswith("/instruments")) and not self._authorised(recorded):
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        if historical and method == "GET":
            return self._ok(self._historical(recorded))
        if path.startswith("/instruments"):
            return 200, gzip.compress(self.instruments_csv.encode()), "text/csv"
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
            ("GET", ("orders",), self._book),
            ("GET", ("trades",), self._tradebook),
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
            ("POST", ("margins", "orders"), self._order_margins),
            ("POST", ("margins", "basket"), self._basket_margins),
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

    # historical candles

    def _historical(self, recorded: Recorded) -> dict[str, Any]:
        parts = recorded.path.split("/")[3:]
        query = recorded.query_dict
        if len(parts) != 2 or not parts[0].isdigit():
            raise KiteError(400, "InputException", "invalid token")
        token, interval = int(parts[0]), parts[1]
        if interval not in HISTORICAL_DAYS:
            raise KiteError(400, "InputException", "invalid interval")
        if interval != "minute":
            raise KiteError(400, "InputException", "this server serves minute candles only")
        try:
            low = datetime.strptime(query["from"], "%Y-%m-%d %H:%M:%S")
            high = datetime.strptime(query["to"], "%Y-%m-%d %H:%M:%S")
        except (KeyError, ValueError):
            raise KiteError(400, "InputException", "invalid from or to") from None
        if query.get("oi") not in {"0", "1"} or query.get("continuous") not in {"0", "1"}:
            raise KiteError(400, "InputException", "invalid oi or continuous")
        if high < low or high - low > timedelta(days=HISTORICAL_DAYS[interval]):
            raise KiteError(400, "InputException", "interval exceeds max limit: 60 days")
        rows = []
        for row in self.history.get(token, []):
            moment = datetime.fromisoformat(row[0]).replace(tzinfo=None)  # IST wall time, as from/to
            if low <= moment <= high:
                rows.append(row if query["oi"] == "1" else row[:6])
        return {"candles": rows}

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
        if variety == "iceberg" and not (form.get("iceberg_legs") and form.get("iceberg_quantity")):
            raise KiteError(400, "InputException", "Missing iceberg_legs or iceberg_quantity")
        if variety != "iceberg" and ("iceberg_legs" in form or "iceberg_quantity" in form):
            raise KiteError(400, "InputException", "iceberg_legs and iceberg_quantity are for iceberg orders")
        if variety == "co" and not form.get("trigger_price"):
            raise KiteError(400, "InputException", "A cover order needs a stoploss trigger price")
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
        self._owners[order_id] = self._user(recorded)
        self.history[order_id] = [{**order, "status": "PUT ORDER REQ RECEIVED"}]
        value = quantity * (price or ltp)
        if self.cash is not None and value > self.cash:
            self._set(order, status="REJECTED", pending_quantity=0)
            order["status_message"] = (
                f"Insufficient funds. Required margin is {value} but available margin is {self.cash}."
            )
            order["status_message_raw"] = "RMS:Margin Exceeds"
        elif variety == "amo":  # held by Kite until the market opens
            self._set(order, status="AMO REQ RECEIVED")
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

    def _order(self, order_id: str, variety: str | None = None) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise KiteError(404, "InputException", "Order not found")
        if variety is not None and variety != order["variety"]:  # an order is modified at its own variety's path
            raise KiteError(400, "InputException", "Invalid order variety")
        return order

    def _modify(self, recorded: Recorded, variety: str, order_id: str) -> dict[str, str]:
        order = self._order(order_id, variety)
        if order["status"] not in {"OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED"}:
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
        status = order["status"]
        self._set(order, status="MODIFIED", **changes)
        self._set(order, status=status if status == "AMO REQ RECEIVED" else "OPEN")
        return {"order_id": order_id}

    def _cancel(self, recorded: Recorded, variety: str, order_id: str) -> dict[str, str]:
        order = self._order(order_id, variety)
        if order["status"] not in {"OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED"}:
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

    # order margins: MARGIN_RATE of each order's value (its price, or the last price for a market order);
    # a basket's final total counts a hedge: the larger of its buys' and its sells' margins.
    MARGIN_RATE = Decimal("0.2")

    def _margin(self, order: dict[str, Any]) -> Decimal:
        price = Decimal(str(order["price"])) or self.market[f"{order['exchange']}:{order['tradingsymbol']}"][1]
        return (price * int(order["quantity"]) * self.MARGIN_RATE).quantize(Decimal("0.01"))

    def _margin_orders(self, recorded: Recorded) -> list[dict[str, Any]]:
        if recorded.headers.get("content-type", "").split(";")[0] != "application/json":
            raise KiteError(400, "InputException", "Expected a JSON body.")
        orders = json.loads(recorded.body)
        if not isinstance(orders, list) or not orders:
            raise KiteError(400, "InputException", "Expected a list of orders.")
        return orders

    def _order_margins(self, recorded: Recorded) -> list[dict[str, Any]]:
        return [
            {
                "type": "equity",
                "tradingsymbol": o["tradingsymbol"],
                "exchange": o["exchange"],
                "total": float(self._margin(o)),
            }
            for o in self._margin_orders(recorded)
        ]

    def _basket_margins(self, recorded: Recorded) -> dict[str, Any]:
        orders = self._margin_orders(recorded)
        buys = sum((self._margin(o) for o in orders if o["transaction_type"] == "BUY"), Decimal(0))
        sells = sum((self._margin(o) for o in orders if o["transaction_type"] == "SELL"), Decimal(0))
        return {"initial": {"total": float(buys + sells)}, "final": {"total": float(max(buys, sells))}, "orders": []}

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
