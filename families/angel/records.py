"""The values Angel One's answers hold, read into typed records: Decimal prices, int quantities,
aware datetimes. Angel sends numbers as strings or as JSON numbers, field by field and answer by
answer, so every reader takes both. A reader raises KeyError, TypeError or ValueError for a value
not in the documented shape; the client turns that into a malformed answer (maybe sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
_STAMP_FORMATS = ("%d-%b-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M:%S")


def text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise TypeError(f"{name} is not text")
    return str(value).strip()


def decimal(row: Mapping[str, Any], name: str) -> Decimal | None:
    """A price: a numeric string or number, None when absent or empty."""
    value = row.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
        raise TypeError(f"{name} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{name} is not a finite number")
    return number


def integer(row: Mapping[str, Any], name: str) -> int:
    """A quantity: a whole number (as a string, an int, or a decimal with no fraction), 0 when absent."""
    number = decimal(row, name)
    if number is None:
        return 0
    if number != number.to_integral_value():
        raise ValueError(f"{name} is not a whole number")
    return int(number)


def stamp(value: Any, *, today: datetime | None = None) -> datetime | None:
    """Angel's timestamps (IST, no zone): "27-May-2024 22:17:54" and the like, or a time of day
    "13:27:53" (the trade book's), which is today's in India. None for an empty or unknown one."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    for layout in _STAMP_FORMATS:
        try:
            return datetime.strptime(value, layout).replace(tzinfo=IST).astimezone(UTC)
        except ValueError:
            continue
    try:
        clock = time.fromisoformat(value)
    except ValueError:
        return None
    day = (today or datetime.now(UTC)).astimezone(IST).date()
    return datetime.combine(day, clock, tzinfo=IST).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AngelOrder:
    """One row of Angel's order book (also the ``orderData`` of an order update)."""

    orderid: str
    ordertag: str
    status: str
    variety: str
    ordertype: str
    producttype: str
    duration: str
    transactiontype: str
    exchange: str
    tradingsymbol: str
    symboltoken: str
    quantity: int
    filledshares: int
    unfilledshares: int
    price: Decimal | None
    triggerprice: Decimal | None
    averageprice: Decimal | None
    text: str
    updated_at: datetime | None


def order_from(row: Mapping[str, Any]) -> AngelOrder:
    if not isinstance(row, Mapping):
        raise TypeError("an order is an object")
    orderid = text(row, "orderid")
    if not orderid:
        raise ValueError("an order without its orderid")
    average = decimal(row, "averageprice")
    return AngelOrder(
        orderid=orderid,
        ordertag=text(row, "ordertag"),
        status=text(row, "status") or text(row, "orderstatus"),
        variety=text(row, "variety"),
        ordertype=text(row, "ordertype"),
        producttype=text(row, "producttype"),
        duration=text(row, "duration"),
        transactiontype=text(row, "transactiontype"),
        exchange=text(row, "exchange"),
        tradingsymbol=text(row, "tradingsymbol"),
        symboltoken=text(row, "symboltoken"),
        quantity=integer(row, "quantity"),
        filledshares=integer(row, "filledshares"),
        unfilledshares=integer(row, "unfilledshares"),
        price=decimal(row, "price"),
        triggerprice=decimal(row, "triggerprice"),
        averageprice=average if average else None,
        text=text(row, "text"),
        updated_at=stamp(row.get("exchorderupdatetime")) or stamp(row.get("updatetime")),
    )


def orders_from(data: Any) -> list[AngelOrder]:
    """The order book; Angel answers ``data: null`` for a day without orders."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError("the order book is a list")
    return [order_from(row) for row in data]


@dataclass(frozen=True, slots=True)
class AngelTrade:
    orderid: str
    fillid: str
    exchange: str
    fillsize: int
    fillprice: Decimal
    filled_at: datetime | None


def trades_from(data: Any) -> list[AngelTrade]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError("the trade book is a list")
    trades = []
    for row in data:
        if not isinstance(row, Mapping):
            raise TypeError("a trade is an object")
        price = decimal(row, "fillprice")
        if price is None or not text(row, "fillid") or not text(row, "orderid"):
            raise ValueError("a trade without its id, order or price")
        trades.append(
            AngelTrade(
                orderid=text(row, "orderid"),
                fillid=text(row, "fillid"),
                exchange=text(row, "exchange"),
                fillsize=integer(row, "fillsize"),
                fillprice=price,
                filled_at=stamp(row.get("filltime")),
            )
        )
    return trades


@dataclass(frozen=True, slots=True)
class AngelPosition:
    exchange: str
    symboltoken: str
    tradingsymbol: str
    producttype: str
    netqty: int
    average_price: Decimal | None


def positions_from(data: Any) -> list[AngelPosition]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError("the positions are a list")
    out = []
    for row in data:
        if not isinstance(row, Mapping):
            raise TypeError("a position is an object")
        out.append(
            AngelPosition(
                exchange=text(row, "exchange"),
                symboltoken=text(row, "symboltoken"),
                tradingsymbol=text(row, "tradingsymbol"),
                producttype=text(row, "producttype"),
                netqty=integer(row, "netqty"),
                average_price=decimal(row, "avgnetprice") or decimal(row, "netprice"),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class AngelHolding:
    exchange: str
    symboltoken: str
    tradingsymbol: str
    quantity: int
    averageprice: Decimal


def holdings_from(data: Any) -> list[AngelHolding]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise TypeError("the holdings are a list")
    out = []
    for row in data:
        if not isinstance(row, Mapping):
            raise TypeError("a holding is an object")
        out.append(
            AngelHolding(
                exchange=text(row, "exchange"),
                symboltoken=text(row, "symboltoken"),
                tradingsymbol=text(row, "tradingsymbol"),
                quantity=integer(row, "quantity"),
                averageprice=decimal(row, "averageprice") or Decimal(0),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class AngelFunds:
    net: Decimal
    availablecash: Decimal
    utiliseddebits: Decimal
    collateral: Decimal


def funds_from(data: Any) -> AngelFunds:
    if not isinstance(data, Mapping):
        raise TypeError("the funds are an object")
    net = decimal(data, "net")
    cash = decimal(data, "availablecash")
    if net is None or cash is None:
        raise ValueError("the funds without net or available cash")
    return AngelFunds(
        net=net,
        availablecash=cash,
        utiliseddebits=decimal(data, "utiliseddebits") or Decimal(0),
        collateral=decimal(data, "collateral") or Decimal(0),
    )


def placed_order_id(data: Any) -> str:
    """The ``orderid`` of placeOrder's answer (``data: {script, orderid, uniqueorderid}``)."""
    if not isinstance(data, Mapping):
        raise TypeError("placeOrder's answer is an object")
    orderid = text(data, "orderid")
    if not orderid:
        raise ValueError("placeOrder answered without an orderid")
    return orderid
