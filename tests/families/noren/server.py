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

import base64
import contextlib
import hashlib
import hmac
import io
import itertools
import json
import re
import struct
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.brokers.contract.kit import REJECT_MESSAGE, Recorded
from tests.brokers.local_server import LocalHandler, LocalServer, Stream

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


@dataclass(eq=False)
class Connection(Stream):
    authenticated: bool = False
    orders: bool = False
    tokens: set[str] = field(default_factory=set)  # "NSE|22" subscribed
    seen: set[str] = field(default_factory=set)  # tokens this connection already had a tk for


class NorenServer(LocalServer):
    """See the module docstring. Credentials are the account's (``uid``, ``password`` ...); a
    QuickAuth or Flattrade token exchange that proves them gets ``susertoken``."""

    name = "NorenOMS"
    documented = "NorenOMS's documented format"

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
        super().__init__()
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
        self.ws_messages: list[Any] = []
        self.orders: dict[str, dict[str, str]] = {}
        self.history: dict[str, list[dict[str, str]]] = {}
        self.trades: list[dict[str, str]] = []
        self.holdings: list[dict[str, Any]] = []
        self.cash = Decimal("100000.00")
        self.token_valid = True
        self._order_ids = itertools.count(24061800000001)
        self._trade_ids = itertools.count(1001)

    def handler_class(self) -> type[LocalHandler]:
        return _Handler

    @property
    def connections(self) -> list[Stream]:
        return self.streams

    @property
    def url(self) -> str:
        return self.root + ROOT

    @property
    def ws_url(self) -> str:
        return f"{self.ws_root}{WS_PATH}"

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
        self.send_all(json.dumps(message), lambda c: isinstance(c, Connection) and c.authenticated and c.orders)

    def push_tick(self, token: str, ltp: Decimal) -> None:
        """A touchline of ``token`` ("NSE|2885") at ``ltp``: ``tk`` to a connection's first, ``tf`` after."""
        exch, number = token.split("|", 1)
        instrument = self.instruments.get(token)
        if instrument is not None:
            instrument.ltp = ltp

        async def send() -> None:
            for connection in self.open_connections():
                if not connection.authenticated:
                    continue
                if token in connection.seen:
                    frame = {"t": "tf", "e": exch, "tk": number, "lp": str(ltp), "ft": str(int(time.time()))}
                else:
                    connection.seen.add(token)
                    frame = self.touchline(token, ltp)
                with contextlib.suppress(ConnectionClosed):
                    await connection.socket.send(json.dumps(frame))

        self.call(send())

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
        self.send_all(message)

    def open_connections(self) -> list[Connection]:
        return [c for c in self.open_streams() if isinstance(c, Connection)]

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

    # --- the websocket -----------------------------------------------------------------------------------
    def stream_for(self, socket: ServerConnection) -> Connection:
        assert socket.request is not None
        if urlsplit(socket.request.path).path != WS_PATH:
            self.violation(f"websocket path {socket.request.path!r}")
        return Connection(socket=socket)

    async def on_message(self, connection: Stream, message: str | bytes) -> None:
        assert isinstance(connection, Connection)
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


class _Handler(LocalHandler):
    local: NorenServer

    def do_GET(self) -> None:  # the symbol masters
        path = urlsplit(self.path).path
        content = self.local.master_files.get(path.lstrip("/"))
        if content is None:
            self.send(404, b"not found", "text/plain")
        else:
            self.send(200, content, "application/zip")

    def do_POST(self) -> None:
        server = self.local
        split = urlsplit(self.path)
        raw = self.read_body()
        headers = self.header_map()
        if split.path == "/trade/apitoken":
            self._apitoken(raw, headers)
            return
        route = split.path[len(ROOT) + 1 :] if split.path.startswith(ROOT + "/") else ""
        call = CALLS.get(route, route or split.path)
        data, jkey, problem = _parse_body(raw, signed_in=route != "QuickAuth")
        self.record(call, data, raw)
        if route not in SCHEMAS:
            server.violation(f"POST {split.path}: no such route")
            self._json(404, {"stat": "Not_Ok", "emsg": "Invalid Input : no such route"})
            return
        if problem:
            server.violation(f"{route}: {problem}")
            self._json(200, {"stat": "Not_Ok", "request_time": stamp(), "emsg": f"Invalid Input : {problem}"})
            return
        fault = server.take_fault(call)
        if self.answer_fault(fault):
            return
        try:
            status, payload = server.serve(route, data, jkey)
        except Refused as refused:
            if refused.violation:
                server.violation(f"{route}: {refused.message}")
            status, payload = refused.status, {"stat": "Not_Ok", "request_time": stamp(), "emsg": refused.message}
        body = json.dumps(payload).encode()
        if fault == "timeout":
            self.hang()
            return
        if fault == "truncated":
            body = body[: max(1, len(body) // 2)]
        self.send(status, body)

    def _apitoken(self, raw: bytes, headers: dict[str, str]) -> None:
        server = self.local
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
        if self.answer_fault(fault):
            return
        try:
            payload = server.apitoken(data)
        except Refused as refused:
            if refused.violation:
                server.violation(f"apitoken: {refused.message}")
            payload = {"stat": "Not_Ok", "emsg": refused.message}
        self._json(200, payload)

    def fault_answer(self, fault: str) -> tuple[int, bytes, str] | None:
        """Noren's answer for a fault answered in place of serving ("timeout" and "truncated" serve)."""
        if fault == "http_500":
            return 500, b"<html><body>500 Internal Server Error</body></html>", "text/html"
        answers = {
            "rate_limited": (429, {"stat": "Not_Ok", "emsg": "Too many requests"}),
            "session_expired": (200, {"stat": "Not_Ok", "request_time": stamp(), "emsg": SESSION_EXPIRED}),
            "rejected": (200, {"stat": "Not_Ok", "request_time": stamp(), "emsg": REJECT_MESSAGE}),
            "malformed": (200, {"request_time": stamp(), "result": "?"}),
        }
        if fault not in answers:
            return None
        status, payload = answers[fault]
        return status, json.dumps(payload).encode(), "application/json"

    def _json(self, status: int, payload: Any) -> None:
        self.send(status, json.dumps(payload).encode())


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
