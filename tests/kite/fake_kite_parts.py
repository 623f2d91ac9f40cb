"""The parts of the local Kite server (tests/kite/fake_kite.py) that are not its book: the test
credentials and fixed payloads written from Kite Connect v3's documentation, the recorded request,
faults and errors, and the HTTP handler that serves a ``FakeKite``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from tests.kite.fake_kite import FakeKite

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
