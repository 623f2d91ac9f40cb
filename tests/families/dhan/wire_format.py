"""DhanHQ v2's documented request formats, as the local Dhan server checks them, and an independent
encoder of the market feed's binary packets (written from the documentation's layout tables, not from
the decoder under test). Sources: https://dhanhq.co/docs/v2 (orders, market quote, live market feed,
order update, authentication) and DhanHQ-py (_order.py, marketfeed.py, orderupdate.py, auth.py)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

SEGMENTS = {"NSE_EQ", "NSE_FNO", "NSE_CURRENCY", "BSE_EQ", "BSE_FNO", "BSE_CURRENCY", "MCX_COMM", "IDX_I"}
TRADABLE = SEGMENTS - {"IDX_I"}
PRODUCTS = {"CNC", "INTRADAY", "MARGIN", "MTF", "CO", "BO"}
ORDER_TYPES = {"LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_MARKET"}
VALIDITIES = {"DAY", "IOC"}
SIDES = {"BUY", "SELL"}
AMO_TIMES = {"PRE_OPEN", "OPEN", "OPEN_30", "OPEN_60"}
LEGS = {"ENTRY_LEG", "TARGET_LEG", "STOP_LOSS_LEG"}
FEED_CODES = {"IDX_I": 0, "NSE_EQ": 1, "NSE_FNO": 2, "NSE_CURRENCY": 3, "BSE_EQ": 4, "MCX_COMM": 5, "BSE_CURRENCY": 7}
FEED_CODES["BSE_FNO"] = 8
REQUEST_CODES = {15, 16, 17, 18, 21, 22, 12}

PLACE_REQUIRED = {
    "dhanClientId": str,
    "transactionType": SIDES,
    "exchangeSegment": TRADABLE,
    "productType": PRODUCTS,
    "orderType": ORDER_TYPES,
    "validity": VALIDITIES,
    "securityId": "digits",
    "quantity": "positive int",
}
PLACE_OPTIONAL = {
    "correlationId": "tag",
    "disclosedQuantity": "int",
    "price": "number",
    "triggerPrice": "number",
    "afterMarketOrder": bool,
    "amoTime": AMO_TIMES,
    "boProfitValue": "number",
    "boStopLossValue": "number",
}
MODIFY_REQUIRED = {
    "dhanClientId": str,
    "orderId": "digits",
    "orderType": ORDER_TYPES,
    "quantity": "positive int",
    "price": "number",
    "triggerPrice": "number",
    "validity": VALIDITIES,
}
MODIFY_OPTIONAL = {"legName": LEGS, "disclosedQuantity": "int"}


def _fits(value: Any, kind: Any) -> bool:
    if kind is str:
        return isinstance(value, str) and bool(value)
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(kind, set):
        return isinstance(value, str) and value in kind
    if kind == "digits":
        return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20
    if kind == "tag":
        return isinstance(value, str) and 0 < len(value) <= 30 and value.isascii() and value.replace("-", "").isalnum()
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "positive int":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if kind == "number":
        return isinstance(value, int | Decimal) and not isinstance(value, bool) and value >= 0
    raise AssertionError(kind)


def check_fields(body: Any, required: Mapping[str, Any], optional: Mapping[str, Any]) -> list[str]:
    """What is wrong with a JSON body: missing, unknown or ill-typed fields (empty: nothing)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    problems = [f"{name} is missing" for name in required if name not in body]
    for name, value in body.items():
        kind = required.get(name, optional.get(name))
        if kind is None:
            problems.append(f"{name} is not a documented field")
        elif not _fits(value, kind):
            problems.append(f"{name}={value!r} is not a valid {name}")
    return problems


def check_place(body: Any, client_id: str) -> list[str]:
    problems = check_fields(body, PLACE_REQUIRED, PLACE_OPTIONAL)
    if problems:
        return problems
    if body["dhanClientId"] != client_id:
        problems.append("dhanClientId is not the signed-in client")
    order_type = body["orderType"]
    if order_type in {"LIMIT", "STOP_LOSS"} and not body.get("price"):
        problems.append(f"a {order_type} order needs a price")
    if order_type in {"STOP_LOSS", "STOP_LOSS_MARKET"} and not body.get("triggerPrice"):
        problems.append(f"a {order_type} order needs a triggerPrice")
    if order_type in {"MARKET", "STOP_LOSS_MARKET"} and body.get("price"):
        problems.append(f"a {order_type} order carries no price")
    if body.get("afterMarketOrder") and "amoTime" not in body:
        problems.append("an after-market order needs its amoTime")
    return problems


def check_modify(body: Any, client_id: str, order_id: str) -> list[str]:
    problems = check_fields(body, MODIFY_REQUIRED, MODIFY_OPTIONAL)
    if problems:
        return problems
    if body["dhanClientId"] != client_id:
        problems.append("dhanClientId is not the signed-in client")
    if body["orderId"] != order_id:
        problems.append("orderId differs from the path's order id")
    if body["orderType"] in {"LIMIT", "STOP_LOSS"} and not body["price"]:
        problems.append("a priced order needs a price")
    if body["orderType"] in {"STOP_LOSS", "STOP_LOSS_MARKET"} and not body["triggerPrice"]:
        problems.append("a stop order needs a triggerPrice")
    return problems


def check_quote(body: Any, client_id: str) -> list[str]:
    if not isinstance(body, dict) or not body:
        return ["the body is not a JSON object of segments"]
    problems = []
    for name, value in body.items():
        if name == "dhanClientId":
            if value != client_id:
                problems.append("dhanClientId is not the signed-in client")
        elif name not in SEGMENTS:
            problems.append(f"{name} is not an exchange segment")
        elif (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            problems.append(f"{name} must list security ids as integers")
    return problems


def check_subscription(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return ["a subscription is a JSON object"]
    problems = []
    code, count, instruments = message.get("RequestCode"), message.get("InstrumentCount"), message.get("InstrumentList")
    if code not in REQUEST_CODES:
        problems.append(f"RequestCode {code!r} is not documented")
    if set(message) - {"RequestCode", "InstrumentCount", "InstrumentList"}:
        problems.append("undocumented keys")
    if code == 12:
        return problems
    if not isinstance(instruments, list) or not 0 < len(instruments) <= 100 or count != len(instruments):
        return [*problems, "InstrumentList must hold 1 to 100 instruments, as InstrumentCount says"]
    for item in instruments:
        if not isinstance(item, dict) or set(item) != {"ExchangeSegment", "SecurityId"}:
            problems.append("an instrument is {ExchangeSegment, SecurityId}")
        elif item["ExchangeSegment"] not in SEGMENTS or not _fits(item["SecurityId"], "digits"):
            problems.append(f"instrument {item!r} is not a segment and a security id (text)")
    return problems


def check_order_login(message: Any, client_id: str, token: str) -> list[str]:
    if not isinstance(message, dict) or set(message) != {"LoginReq", "UserType"}:
        return ["the login message is {LoginReq, UserType}"]
    login = message["LoginReq"]
    problems = []
    if message["UserType"] != "SELF":
        problems.append("UserType is SELF for an individual")
    if not isinstance(login, dict) or login.get("MsgCode") != 42:
        problems.append("LoginReq.MsgCode is 42")
    elif login.get("ClientId") != client_id or login.get("Token") != token:
        problems.append("LoginReq names another client or token")
    return problems


# --- the market feed's packets (little-endian; header: code u8, length u16, segment u8, security id u32) --
def header(code: int, length: int, segment: str, security_id: int) -> bytes:
    return struct.pack("<BHBI", code, length, FEED_CODES[segment], security_id)


def ticker_packet(segment: str, security_id: int, ltp: Decimal, ltt: int = 1_765_000_000) -> bytes:
    return header(2, 16, segment, security_id) + struct.pack("<fI", float(ltp), ltt)


def quote_packet(
    segment: str, security_id: int, ltp: Decimal, *, volume: int = 0, ohlc=(0, 0, 0, 0), ltt: int = 1_765_000_000
) -> bytes:
    o, c, h, low = (float(x) for x in ohlc)
    body = struct.pack("<fHIfIIIffff", float(ltp), 5, ltt, float(ltp), volume, 10, 20, o, c, h, low)
    return header(4, 50, segment, security_id) + body


def full_packet(
    segment: str,
    security_id: int,
    ltp: Decimal,
    *,
    volume: int = 0,
    oi: int = 0,
    ohlc=(0, 0, 0, 0),
    depth: tuple[tuple[int, int, Decimal, Decimal], ...] = (),
    ltt: int = 1_765_000_000,
) -> bytes:
    """``depth``: up to five (bid qty, ask qty, bid price, ask price)."""
    o, c, h, low = (float(x) for x in ohlc)
    body = struct.pack("<fHIfIIIIIIffff", float(ltp), 5, ltt, float(ltp), volume, 10, 20, oi, oi, oi, o, c, h, low)
    levels = list(depth) + [(0, 0, Decimal(0), Decimal(0))] * (5 - len(depth))
    for bid_qty, ask_qty, bid, ask in levels:
        body += struct.pack("<IIHHff", bid_qty, ask_qty, 1, 1, float(bid), float(ask))
    return header(8, 162, segment, security_id) + body


def oi_packet(segment: str, security_id: int, oi: int) -> bytes:
    return header(5, 12, segment, security_id) + struct.pack("<I", oi)


def prev_close_packet(segment: str, security_id: int, close: Decimal) -> bytes:
    return header(6, 16, segment, security_id) + struct.pack("<fI", float(close), 0)


def disconnect_packet(reason: int) -> bytes:
    return header(50, 10, "NSE_EQ", 0) + struct.pack("<H", reason)
