"""A local NorenOMS server for tests, written from the public documentation (ShoonyaApi-py's README and
NorenApi.py): the REST routes under ``/NorenWClientTP``, Flattrade's ``/trade/apitoken``, the symbol
masters (``/<EXCH>_symbols.txt.zip``) and the JSON websocket, all on loopback.

It validates every request against the documented format: the body must be ``jData=<json>`` plus
``&jKey=<token>`` for a signed-in route, the JSON an object of strings holding each route's required
fields and no field the route does not document, with each code one of the documented values. A request
that breaks a rule is answered as Noren answers bad input (``Not_Ok``, "Invalid Input : ...") and
recorded in ``violations``, which the tests assert is empty (``stop`` raises when it is not).

It keeps a small, coherent book: a MARKET order fills at once at the instrument's price (a trade), a
LIMIT order rests OPEN and an SL order TRIGGER_PENDING until modified, cancelled or filled on demand
(``fill``). Faults on demand (``fail_next``): the contract suite's names (``tests/brokers/contract/kit.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import itertools
import json
import re
import struct
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.brokers.contract.kit import REJECT_MESSAGE, Recorded

IST = ZoneInfo("Asia/Kolkata")
ROOT = "/NorenWClientTP"
WS_PATH = "/NorenWSTP/"
SESSION_EXPIRED = "Session Expired :  Invalid Session Key"
NO_DATA = 'Error Occurred : 5 "no data"'

# The suite's name for each route.
CALLS = {
    "QuickAuth": "login",
    "PlaceOrder": "place",
    "ModifyOrder": "modify",
    "CancelOrder": "cancel",
    "OrderBook": "orders",
    "SingleOrdHist": "history",
    "TradeBook": "trades",
    "PositionBook": "positions",
    "Holdings": "holdings",
    "Limits": "funds",
    "GetQuotes": "quote",
}
EXCHANGES = {"NSE", "NFO", "BSE", "BFO", "CDS", "MCX", "NCX"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
INTEGER = re.compile(r"\d+")
HEX64 = re.compile(r"[0-9a-f]{64}")


# Each route's documented fields: required, optional, and the values a code field may take.
@dataclass(frozen=True)
class Schema:
    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    enums: Mapping[str, frozenset[str]] = field(default_factory=dict)
    numbers: frozenset[str] = frozenset()
    integers: frozenset[str] = frozenset()


def _s(*names: str) -> frozenset[str]:
    return frozenset(names)


SCHEMAS: dict[str, Schema] = {
    "QuickAuth": Schema(
        required=_s("source", "apkversion", "uid", "pwd", "factor2", "vc", "appkey", "imei"),
        optional=_s("addldivinf", "ipaddr"),
        enums={"source": _s("API")},
    ),
    "PlaceOrder": Schema(
        required=_s("uid", "actid", "exch", "tsym", "qty", "prc", "prd", "trantype", "prctyp", "ret"),
        optional=_s("trgprc", "dscqty", "remarks", "ordersource", "amo", "bpprc", "blprc", "trailprc"),
        enums={
            "exch": frozenset(EXCHANGES),
            "prd": _s("C", "M", "I", "B", "H"),
            "trantype": _s("B", "S"),
            "prctyp": _s("LMT", "MKT", "SL-LMT", "SL-MKT", "DS", "2L", "3L"),
            "ret": _s("DAY", "EOS", "IOC"),
            "ordersource": _s("API", "MOB", "WEB", "TT"),
            "amo": _s("Yes"),
        },
        numbers=_s("prc", "trgprc", "bpprc", "blprc", "trailprc"),
        integers=_s("qty", "dscqty"),
    ),
    "ModifyOrder": Schema(
        required=_s("exch", "norenordno", "tsym", "uid"),
        optional=_s("prctyp", "prc", "qty", "ret", "trgprc", "bpprc", "blprc", "trailprc", "actid", "ordersource"),
        enums={
            "exch": frozenset(EXCHANGES),
            "prctyp": _s("LMT", "MKT", "SL-LMT", "SL-MKT"),
            "ret": _s("DAY", "EOS", "IOC"),
            "ordersource": _s("API", "MOB", "WEB", "TT"),
        },
        numbers=_s("prc", "trgprc", "bpprc", "blprc", "trailprc"),
        integers=_s("qty", "norenordno"),
    ),
    "CancelOrder": Schema(required=_s("norenordno", "uid"), optional=_s("ordersource"), integers=_s("norenordno")),
    "OrderBook": Schema(required=_s("uid"), optional=_s("prd", "ordersource")),
    "SingleOrdHist": Schema(required=_s("uid", "norenordno"), optional=_s("ordersource"), integers=_s("norenordno")),
    "TradeBook": Schema(required=_s("uid", "actid"), optional=_s("ordersource")),
    "PositionBook": Schema(required=_s("uid", "actid"), optional=_s("ordersource")),
    "Holdings": Schema(required=_s("uid", "actid", "prd"), enums={"prd": _s("C", "M", "I", "B", "H")}),
    "Limits": Schema(required=_s("uid", "actid"), optional=_s("prd", "seg", "exch")),
    "GetQuotes": Schema(required=_s("uid", "exch", "token"), enums={"exch": frozenset(EXCHANGES)}),
}


class Refused(Exception):
    """Answer ``Not_Ok`` with this message (``violation``: the request broke the documented format)."""

    def __init__(self, message: str, *, violation: bool = False, status: int = 200) -> None:
        super().__init__(message)
        self.message, self.violation, self.status = message, violation, status


def totp(secret_b32: str, at: float) -> str:
    """RFC 6238 (30 s, six digits, SHA-1), written here apart from the code under test."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(IST)).astimezone(IST).strftime("%H:%M:%S %d-%m-%Y")


def zipped(name: str, text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    return out.getvalue()


@dataclass
class Instrument:
    exch: str
    token: str
    tsym: str
    ltp: Decimal


@dataclass
class Connection:
    socket: ServerConnection
    authenticated: bool = False
    orders: bool = False
    tokens: set[str] = field(default_factory=set)  # "NSE|22" subscribed
    seen: set[str] = field(default_factory=set)  # tokens this connection already had a tk for
    closed: bool = False


class NorenServer:
    """See the module docstring. Credentials are the account's (``uid``, ``password`` ...); a
    QuickAuth or Flattrade token exchange that proves them gets ``susertoken``."""

    def __init__(
        self,
        *,
        uid: str,
        password: str,
        totp_secret: str,
        vendor_code: str,
        api_secret: str,
        imei: str,
        susertoken: str,
        flattrade_api_key: str = "",
        flattrade_secret: str = "",
        flattrade_code: str = "",
        instruments: list[Instrument] | None = None,
        master_files: Mapping[str, bytes] | None = None,
        hang_seconds: float = 15.0,
        strict: bool = True,
    ) -> None:
        self.uid, self.password, self.totp_secret = uid, password, totp_secret
        self.vendor_code, self.api_secret, self.imei = vendor_code, api_secret, imei
        self.susertoken = susertoken
        self.flattrade_api_key, self.flattrade_secret, self.flattrade_code = (
            flattrade_api_key,
            flattrade_secret,
            flattrade_code,
        )
        self.instruments = {f"{i.exch}|{i.token}": i for i in (instruments or [])}
        self.master_files = dict(master_files or {})
        self.hang_seconds, self.strict = hang_seconds, strict
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.subscriptions: list[Any] = []
        self.ws_messages: list[Any] = []
        self.orders: dict[str, dict[str, str]] = {}
        self.history: dict[str, list[dict[str, str]]] = {}
        self.trades: list[dict[str, str]] = []
        self.holdings: list[dict[str, Any]] = []
        self.cash = Decimal("100000.00")
        self.token_valid = True
        self.connections: list[Connection] = []
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._order_ids = itertools.count(24061800000001)
        self._trade_ids = itertools.count(1001)
        self._http: ThreadingHTTPServer | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._ws_thread = threading.Thread(target=self._run_ws, name="noren-ws", daemon=True)
        self.ws_port = 0

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> NorenServer:
        server = self

        class Handler(_Handler):
            noren = server

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._http.block_on_close = False
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._ws_thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the NorenOMS websocket server did not start")
        return self

    def stop(self) -> None:
        """Stop both servers; raises AssertionError when a request broke the documented format."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._ws_thread.join(10)
        if self.strict and self.violations:
            raise AssertionError("requests broke NorenOMS's documented format: " + "; ".join(self.violations))

    @property
    def root(self) -> str:
        assert self._http is not None
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self.root + ROOT

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}{WS_PATH}"

    def endpoints(self) -> dict[str, str]:
        return {
            "api": self.url,
            "ws": self.ws_url,
            "order_ws": self.ws_url,
            "master": self.root,
            "auth": self.root,
            "login": self.root + "/login",
        }

    # --- what tests use -------------------------------------------------------------------------------
    def last(self, call: str) -> Recorded:
        for recorded in reversed(self.requests):
            if recorded.call == call:
                return recorded
        raise LookupError(f"no {call} request")

    def count(self, call: str) -> int:
        return sum(1 for r in self.requests if r.call == call)

    def fail_next(self, call: str, fault: str) -> None:
        if fault not in {
            "http_500",
            "timeout",
            "malformed",
            "truncated",
            "rate_limited",
            "session_expired",
            "rejected",
        }:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.setdefault(call, []).append(fault)

    def fill(self, broker_order_id: str, price: Decimal) -> None:
        """The exchange fills the resting order completely at ``price``."""
        with self._lock:
            order = self.orders[broker_order_id]
            if order["status"] not in {"OPEN", "TRIGGER_PENDING"}:
                raise ValueError(f"order {broker_order_id} is {order['status']}")
            self._fill(order, price)

    def push_order_update(self, broker_order_id: str) -> None:
        """The order's current state as an ``om`` message to every connection subscribed to orders."""
        with self._lock:
            message = {"t": "om", **self.orders[broker_order_id]}
            message["reporttype"] = message.pop("rpt", "")
            if message["reporttype"] == "Fill" and self.trades:
                trade = next(t for t in reversed(self.trades) if t["norenordno"] == broker_order_id)
                message.update({k: trade[k] for k in ("flid", "flqty", "flprc", "fltm")})
        self._broadcast(json.dumps(message), lambda c: c.authenticated and c.orders)

    def push_tick(self, token: str, ltp: Decimal) -> None:
        """A touchline of ``token`` ("NSE|2885") at ``ltp``: ``tk`` to a connection's first, ``tf`` after."""
        exch, number = token.split("|", 1)
        instrument = self.instruments.get(token)
        if instrument is not None:
            instrument.ltp = ltp

        async def send() -> None:
            for connection in self._open():
                if not connection.authenticated:
                    continue
                if token in connection.seen:
                    frame = {"t": "tf", "e": exch, "tk": number, "lp": str(ltp), "ft": str(int(time.time()))}
                else:
                    connection.seen.add(token)
                    frame = self.touchline(token, ltp)
                with contextlib.suppress(ConnectionClosed):
                    await connection.socket.send(json.dumps(frame))

        self._call(send())

    def touchline(self, token: str, ltp: Decimal) -> dict[str, str]:
        """A full touchline (``tk``) as the README's sample has it."""
        exch, number = token.split("|", 1)
        instrument = self.instruments.get(token)
        return {
            "t": "tk",
            "e": exch,
            "tk": number,
            "ts": instrument.tsym if instrument else "",
            "pp": "2",
            "ls": "1",
            "ti": "0.05",
            "lp": str(ltp),
            "o": str(ltp),
            "h": str(ltp),
            "l": str(ltp),
            "c": str(ltp),
            "ap": str(ltp),
            "v": "1000",
            "bp1": str(ltp - Decimal("0.05")),
            "sp1": str(ltp + Decimal("0.05")),
            "bq1": "10",
            "sq1": "12",
            "ft": str(int(time.time())),
        }

    def push_raw(self, message: str | bytes) -> None:
        self._broadcast(message, lambda c: True)

    def drop_streams(self) -> None:
        async def abort() -> None:
            for connection in self._open():
                connection.socket.transport.abort()

        self._call(abort())

    def open_connections(self) -> list[Connection]:
        return self._open()

    # --- the REST routes ------------------------------------------------------------------------------
    def serve(self, route: str, data: dict[str, str], jkey: str | None) -> tuple[int, Any]:
        """The answer to one valid-looking request (raises Refused for a refusal)."""
        schema = SCHEMAS[route]
        self._check(route, schema, data)
        if route == "QuickAuth":
            return 200, self._login(data)
        if jkey != self.susertoken or not self.token_valid:
            raise Refused(SESSION_EXPIRED)
        if data.get("uid") != self.uid or data.get("actid", self.uid) != self.uid:
            raise Refused("Invalid Input : Invalid uid or actid", violation=True)
        with self._lock:
            return 200, getattr(self, "_" + route)(data)

    def _check(self, route: str, schema: Schema, data: dict[str, Any]) -> None:
        for name, value in data.items():
            if not isinstance(value, str):
                raise Refused(f"Invalid Input : {name} must be a string", violation=True)
        missing = sorted(schema.required - data.keys())
        if missing:
            raise Refused(f"Invalid Input : Missing {', '.join(missing)}", violation=True)
        unknown = sorted(data.keys() - schema.required - schema.optional)
        if unknown:
            raise Refused(f"Invalid Input : {route} has no field {', '.join(unknown)}", violation=True)
        for name, allowed in schema.enums.items():
            if name in data and data[name] not in allowed:
                raise Refused(f"Invalid Input : {name} {data[name]!r}", violation=True)
        for name in schema.numbers & data.keys():
            if not NUMBER.fullmatch(data[name]):
                raise Refused(f"Invalid Input : {name} is not a number", violation=True)
        for name in schema.integers & data.keys():
            if not INTEGER.fullmatch(data[name]):
                raise Refused(f"Invalid Input : {name} is not a whole number", violation=True)

    def _login(self, data: dict[str, str]) -> dict[str, Any]:
        if not HEX64.fullmatch(data["pwd"]) or not HEX64.fullmatch(data["appkey"]):
            raise Refused("Invalid Input : pwd and appkey are SHA-256 hex digests", violation=True)
        if not re.fullmatch(r"\d{6}", data["factor2"]):
            raise Refused("Invalid Input : factor2 is a six-digit code", violation=True)
        if data["uid"] != self.uid or data["pwd"] != sha256(self.password):
            raise Refused("Invalid Input : Wrong Password")
        now = time.time()
        if data["factor2"] not in {totp(self.totp_secret, now), totp(self.totp_secret, now - 30)}:
            raise Refused("Invalid Input : Invalid OTP")
        if data["vc"] != self.vendor_code or data["appkey"] != sha256(f"{self.uid}|{self.api_secret}"):
            raise Refused("Invalid Input : Invalid App Key")
        if data["imei"] != self.imei:
            raise Refused("Invalid Input : Invalid imei", violation=True)
        self.token_valid = True
        return {
            "request_time": stamp(),
            "stat": "Ok",
            "susertoken": self.susertoken,
            "lastaccesstime": str(int(now)),
            "actid": self.uid,
            "uname": "TEST USER",
        }

    def _PlaceOrder(self, data: dict[str, str]) -> dict[str, Any]:
        prctyp = data["prctyp"]
        if prctyp in {"SL-LMT", "SL-MKT"} and "trgprc" not in data:
            raise Refused("Invalid Input : trgprc is required for SL orders", violation=True)
        if prctyp not in {"SL-LMT", "SL-MKT"} and "trgprc" in data:
            raise Refused("Invalid Input : trgprc is only sent with SL orders", violation=True)
        if prctyp in {"DS", "2L", "3L"} or data["prd"] in {"B", "H"}:
            raise Refused(f"Invalid Input : {prctyp}/{data['prd']} not served here", violation=True)
        instrument = self._instrument(data["exch"], data["tsym"])
        if int(data["qty"]) <= 0:
            raise Refused("Invalid Input : qty", violation=True)
        if prctyp in {"LMT", "SL-LMT"} and Decimal(data["prc"]) <= 0:
            raise Refused("Invalid Input : prc", violation=True)
        number = str(next(self._order_ids))
        order = {
            "stat": "Ok",
            "norenordno": number,
            "uid": self.uid,
            "actid": self.uid,
            "exch": data["exch"],
            "tsym": data["tsym"],
            "token": instrument.token,
            "qty": data["qty"],
            "trantype": data["trantype"],
            "prctyp": prctyp,
            "ret": data["ret"],
            "prd": data["prd"],
            "prc": data["prc"],
            "pp": "2",
            "ls": "1",
            "ti": "0.05",
            "dscqty": data.get("dscqty", "0"),
            "status": "TRIGGER_PENDING" if prctyp.startswith("SL") else "OPEN",
            "rpt": "New",
            "fillshares": "0",
            "avgprc": "0.00",
            "remarks": data.get("remarks", ""),
            "norentm": stamp(),
            "exch_tm": stamp(),
        }
        if "trgprc" in data:
            order["trgprc"] = data["trgprc"]
        self.orders[number] = order
        self.history[number] = [dict(order)]
        if prctyp == "MKT":
            self._fill(order, instrument.ltp)
        return {"request_time": stamp(), "stat": "Ok", "norenordno": number}

    def _ModifyOrder(self, data: dict[str, str]) -> dict[str, Any]:
        order = self.orders.get(data["norenordno"])
        if order is None:
            raise Refused("Rejected : ORA:Order not found")
        if data["exch"] != order["exch"] or data["tsym"] != order["tsym"]:
            raise Refused("Invalid Input : exch and tsym must be the order's", violation=True)
        if order["status"] not in {"OPEN", "TRIGGER_PENDING"}:
            raise Refused(f"Rejected : ORA:Order is {order['status']}")
        prctyp = data.get("prctyp", order["prctyp"])
        if prctyp in {"SL-LMT", "SL-MKT"} and "trgprc" not in data:
            raise Refused("Invalid Input : trgprc is required for SL orders", violation=True)
        for name in ("qty", "prc", "trgprc", "ret"):
            if name in data:
                order[name] = data[name]
        order["prctyp"] = prctyp
        if not prctyp.startswith("SL"):
            order.pop("trgprc", None)
            order["status"] = "OPEN"
        order["rpt"] = "Replaced"
        order["norentm"] = stamp()
        self.history[order["norenordno"]].insert(0, dict(order))
        if prctyp == "MKT":
            self._fill(order, self.instruments[f"{order['exch']}|{order['token']}"].ltp)
        return {"request_time": stamp(), "stat": "Ok", "result": order["norenordno"]}

    def _CancelOrder(self, data: dict[str, str]) -> dict[str, Any]:
        order = self.orders.get(data["norenordno"])
        if order is None or order["status"] not in {"OPEN", "TRIGGER_PENDING"}:
            raise Refused("Rejected : ORA:Order not found to Cancel")
        order.update(
            status="CANCELED",
            rpt="Canceled",
            cancelqty=str(int(order["qty"]) - int(order["fillshares"])),
            norentm=stamp(),
        )
        self.history[order["norenordno"]].insert(0, dict(order))
        return {"request_time": stamp(), "stat": "Ok", "result": order["norenordno"]}

    def _OrderBook(self, data: dict[str, str]) -> Any:
        if not self.orders:
            raise Refused(NO_DATA)
        return [dict(order) for order in reversed(self.orders.values())]

    def _SingleOrdHist(self, data: dict[str, str]) -> Any:
        states = self.history.get(data["norenordno"])
        if not states:
            raise Refused(NO_DATA)
        return [dict(state) for state in states]

    def _TradeBook(self, data: dict[str, str]) -> Any:
        if not self.trades:
            raise Refused(NO_DATA)
        return [dict(trade) for trade in self.trades]

    def _PositionBook(self, data: dict[str, str]) -> Any:
        net: dict[tuple[str, str, str], list[Any]] = {}
        for trade in self.trades:
            key = (trade["exch"], trade["token"], trade["prd"])
            entry = net.setdefault(key, [0, Decimal(0), trade["tsym"]])
            signed = int(trade["flqty"]) * (1 if trade["trantype"] == "B" else -1)
            entry[0] += signed
            entry[1] += signed * Decimal(trade["flprc"])
        if not net:
            raise Refused(NO_DATA)
        return [
            {
                "stat": "Ok",
                "uid": self.uid,
                "actid": self.uid,
                "exch": exch,
                "tsym": tsym,
                "token": token,
                "prd": prd,
                "netqty": str(quantity),
                "netavgprc": f"{(value / quantity if quantity else Decimal(0)):.2f}",
                "daybuyqty": "0",
                "daysellqty": "0",
                "lp": "0.00",
                "urmtom": "0.00",
                "rpnl": "0.00",
            }
            for (exch, token, prd), (quantity, value, tsym) in net.items()
        ]

    def _Holdings(self, data: dict[str, str]) -> Any:
        if not self.holdings:
            raise Refused(NO_DATA)
        return [dict(row) for row in self.holdings]

    def _Limits(self, data: dict[str, str]) -> Any:
        used = sum((Decimal(t["flprc"]) * int(t["flqty"]) for t in self.trades if t["trantype"] == "B"), Decimal(0))
        return {
            "request_time": stamp(),
            "stat": "Ok",
            "prfname": "SHOONYA",
            "cash": f"{self.cash:.2f}",
            "payin": "0.00",
            "payout": "0.00",
            "brkcollamt": "0.00",
            "unclearedcash": "0.00",
            "daycash": "0.00",
            "marginused": f"{used:.2f}",
            "collateral": "0.00",
        }

    def _GetQuotes(self, data: dict[str, str]) -> Any:
        instrument = self.instruments.get(f"{data['exch']}|{data['token']}")
        if instrument is None:
            raise Refused(NO_DATA)
        ltp = instrument.ltp
        return {
            "request_time": stamp(),
            "stat": "Ok",
            "exch": instrument.exch,
            "tsym": instrument.tsym,
            "token": instrument.token,
            "pp": "2",
            "ls": "1",
            "ti": "0.05",
            "lp": f"{ltp:.2f}",
            "o": f"{ltp:.2f}",
            "h": f"{ltp:.2f}",
            "l": f"{ltp:.2f}",
            "c": f"{ltp:.2f}",
            "v": "12345",
            "bp1": f"{ltp - Decimal('0.05'):.2f}",
            "sp1": f"{ltp + Decimal('0.05'):.2f}",
            "bq1": "10",
            "sq1": "12",
            "bo1": "2",
            "so1": "3",
        }

    def apitoken(self, data: Any) -> dict[str, Any]:
        """Flattrade's ``POST /trade/apitoken`` (JSON ``api_key``, ``request_code``, ``api_secret``)."""
        if not isinstance(data, dict) or set(data) != {"api_key", "request_code", "api_secret"}:
            raise Refused("Invalid Input : api_key, request_code and api_secret", violation=True)
        if not all(isinstance(v, str) for v in data.values()):
            raise Refused("Invalid Input : strings only", violation=True)
        expected = sha256(self.flattrade_api_key + self.flattrade_code + self.flattrade_secret)
        if data["api_key"] != self.flattrade_api_key or data["request_code"] != self.flattrade_code:
            raise Refused("Invalid Input : invalid request code")
        if data["api_secret"] != expected:
            raise Refused("Invalid Input : invalid api secret")
        self.token_valid = True
        return {"stat": "Ok", "token": self.susertoken, "client": self.uid}

    # --- internals -------------------------------------------------------------------------------------
    def _instrument(self, exch: str, tsym: str) -> Instrument:
        for instrument in self.instruments.values():
            if instrument.exch == exch and instrument.tsym == tsym:
                return instrument
        raise Refused(f"Invalid Input : Invalid Trading Symbol {tsym}")

    def _fill(self, order: dict[str, str], price: Decimal) -> None:
        quantity = int(order["qty"]) - int(order["fillshares"])
        fill_time = datetime.now(IST).strftime("%d-%m-%Y %H:%M:%S")
        order.update(status="COMPLETE", rpt="Fill", fillshares=order["qty"], avgprc=f"{price:.2f}", norentm=stamp())
        self.history[order["norenordno"]].insert(0, dict(order))
        self.trades.append(
            {
                "stat": "Ok",
                "norenordno": order["norenordno"],
                "uid": self.uid,
                "actid": self.uid,
                "exch": order["exch"],
                "prctyp": order["prctyp"],
                "ret": order["ret"],
                "prd": order["prd"],
                "flid": str(next(self._trade_ids)),
                "fltm": fill_time,
                "trantype": order["trantype"],
                "tsym": order["tsym"],
                "qty": order["qty"],
                "token": order["token"],
                "fillshares": order["qty"],
                "flqty": str(quantity),
                "pp": "2",
                "ls": "1",
                "ti": "0.05",
                "prc": order["prc"],
                "flprc": f"{price:.2f}",
                "norentm": stamp(),
                "exch_tm": stamp(),
                "remarks": order["remarks"],
                "exchordid": "1100000000" + order["norenordno"][-4:],
            }
        )

    def take_fault(self, call: str) -> str | None:
        with self._lock:
            faults = self._faults.get(call)
            return faults.pop(0) if faults else None

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def violation(self, what: str) -> None:
        with self._lock:
            self.violations.append(what)

    # --- the websocket -----------------------------------------------------------------------------------
    def _run_ws(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve_ws())
        self._loop.close()

    async def _serve_ws(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._ws_handler, "127.0.0.1", 0, compression=None) as server:
            self.ws_port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()
            server.close(close_connections=False)
            for connection in self._open():
                connection.socket.transport.abort()

    async def _ws_handler(self, socket: ServerConnection) -> None:
        connection = Connection(socket=socket)
        if urlsplit(socket.request.path).path != WS_PATH:
            self.violation(f"websocket path {socket.request.path!r}")
        self.connections.append(connection)
        try:
            async for message in socket:
                await self._ws_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            connection.closed = True

    async def _ws_message(self, connection: Connection, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            if not isinstance(data, dict) or not isinstance(data.get("t"), str):
                raise ValueError
            if not all(isinstance(v, str) for v in data.values()):
                raise ValueError
        except ValueError:
            self.violation(f"websocket message {message[:80]!r} is not a JSON object of strings with t")
            return
        self.ws_messages.append(data)
        kind = data["t"]
        if kind == "c":
            if set(data) != {"t", "uid", "actid", "susertoken", "source"} or data["source"] != "API":
                self.violation(f"connect message fields {sorted(data)}")
            ok = data.get("susertoken") == self.susertoken and data.get("uid") == self.uid and self.token_valid
            connection.authenticated = ok
            await connection.socket.send(json.dumps({"t": "ck", "s": "OK" if ok else "Not_Ok", "uid": self.uid}))
            if not ok:
                await connection.socket.close()
            return
        if not connection.authenticated:
            self.violation(f"websocket message {kind!r} before the connection was acknowledged")
            return
        if kind == "h":
            return
        if kind in {"t", "d", "u", "ud"}:
            self.subscriptions.append(data)
            keys = data.get("k", "").split("#")
            if set(data) != {"t", "k"} or not all(re.fullmatch(r"[A-Z]{2,5}\|[A-Za-z0-9]{1,20}", k) for k in keys):
                self.violation(f"subscription {data}")
                return
            if kind in {"t", "d"}:
                for key in keys:
                    connection.tokens.add(key)
                    instrument = self.instruments.get(key)
                    if instrument is not None:  # the acknowledgement is the full touchline
                        connection.seen.add(key)
                        frame = self.touchline(key, instrument.ltp)
                        frame["t"] = "tk" if kind == "t" else "dk"
                        await connection.socket.send(json.dumps(frame))
            else:
                connection.tokens.difference_update(keys)
            return
        if kind == "o":
            self.subscriptions.append(data)
            if set(data) != {"t", "actid"} or data["actid"] != self.uid:
                self.violation(f"order subscription {data}")
                return
            connection.orders = True
            await connection.socket.send(json.dumps({"t": "ok"}))
            return
        self.violation(f"websocket message type {kind!r}")

    def _open(self) -> list[Connection]:
        return [c for c in self.connections if not c.closed]

    def _broadcast(self, message: str | bytes, which: Any) -> None:
        async def send() -> None:
            for connection in self._open():
                if which(connection):
                    with contextlib.suppress(ConnectionClosed):
                        await connection.socket.send(message)

        self._call(send())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    noren: NorenServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # the symbol masters
        path = urlsplit(self.path).path
        content = self.noren.master_files.get(path.lstrip("/"))
        if content is None:
            self._send(404, b"not found", "text/plain")
        else:
            self._send(200, content, "application/zip")

    def do_POST(self) -> None:
        server = self.noren
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if split.path == "/trade/apitoken":
            self._apitoken(raw, headers)
            return
        route = split.path[len(ROOT) + 1 :] if split.path.startswith(ROOT + "/") else ""
        call = CALLS.get(route, route or split.path)
        data, jkey, problem = _parse_body(raw, signed_in=route != "QuickAuth")
        server.record(
            Recorded(
                call=call,
                method="POST",
                path=split.path,
                query=dict(parse_qsl(split.query)),
                headers=headers,
                body=data,
                raw=raw,
            )
        )
        if route not in SCHEMAS:
            server.violation(f"POST {split.path}: no such route")
            self._json(404, {"stat": "Not_Ok", "emsg": "Invalid Input : no such route"})
            return
        if problem:
            server.violation(f"{route}: {problem}")
            self._json(200, {"stat": "Not_Ok", "request_time": stamp(), "emsg": f"Invalid Input : {problem}"})
            return
        fault = server.take_fault(call)
        if fault in {"http_500", "rate_limited", "session_expired", "rejected", "malformed"}:
            self._fault(fault)
            return
        try:
            status, payload = server.serve(route, data, jkey)
        except Refused as refused:
            if refused.violation:
                server.violation(f"{route}: {refused.message}")
            status, payload = refused.status, {"stat": "Not_Ok", "request_time": stamp(), "emsg": refused.message}
        body = json.dumps(payload).encode()
        if fault == "timeout":
            server._stop.wait(server.hang_seconds)
            self.close_connection = True
            return
        if fault == "truncated":
            body = body[: max(1, len(body) // 2)]
        self._send(status, body, "application/json")

    def _apitoken(self, raw: bytes, headers: dict[str, str]) -> None:
        server = self.noren
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        server.record(
            Recorded(call="login", method="POST", path="/trade/apitoken", query={}, headers=headers, body=data, raw=raw)
        )
        if "json" not in headers.get("content-type", ""):
            server.violation("apitoken: the body is JSON (Content-Type application/json)")
        fault = server.take_fault("login")
        if fault is not None and fault != "timeout" and fault != "truncated":
            self._fault(fault)
            return
        try:
            payload = server.apitoken(data)
        except Refused as refused:
            if refused.violation:
                server.violation(f"apitoken: {refused.message}")
            payload = {"stat": "Not_Ok", "emsg": refused.message}
        self._json(200, payload)

    def _fault(self, fault: str) -> None:
        if fault == "http_500":
            self._send(500, b"<html><body>500 Internal Server Error</body></html>", "text/html")
        elif fault == "rate_limited":
            self._json(429, {"stat": "Not_Ok", "emsg": "Too many requests"})
        elif fault == "session_expired":
            self._json(200, {"stat": "Not_Ok", "request_time": stamp(), "emsg": SESSION_EXPIRED})
        elif fault == "rejected":
            self._json(200, {"stat": "Not_Ok", "request_time": stamp(), "emsg": REJECT_MESSAGE})
        elif fault == "malformed":
            self._json(200, {"request_time": stamp(), "result": "?"})

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def _parse_body(raw: bytes, *, signed_in: bool) -> tuple[Any, str | None, str]:
    """``(jData object, jKey, problem)``: the body must be ``jData=<json>`` (+ ``&jKey=<token>``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, "the body is not UTF-8"
    if not text.startswith("jData="):
        return None, None, "the body does not start with jData="
    try:
        fields = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None, None, "the body is not jData=...&jKey=..."
    names = [name for name, _ in fields]
    if names != (["jData", "jKey"] if signed_in else ["jData"]):
        return None, None, f"the body's fields are {names}"
    values = dict(fields)
    try:
        data = json.loads(values["jData"])
    except ValueError:
        return None, values.get("jKey"), "jData is not JSON"
    if not isinstance(data, dict):
        return data, values.get("jKey"), "jData is not a JSON object"
    return data, values.get("jKey"), ""
