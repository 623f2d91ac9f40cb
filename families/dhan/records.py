"""Readers of Dhan's JSON records (orders, trades, positions, holdings, funds, quotes, the order
update stream's messages) into plain values. Every reader raises KeyError, TypeError or ValueError
(ArithmeticError for a bad number) on a record not in the documented shape; callers turn those into
``BrokerUnavailable`` (an answer) or a skipped message (a stream)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
)


def text(record: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = record.get(name) if required is False else record[name]
    if value is None:
        if required:
            raise ValueError(f"{name} is null")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{name} is not text")
    return str(value)


def number(record: Mapping[str, Any], name: str, *, default: Decimal | None = None) -> Decimal:
    value = record.get(name)
    if value is None:
        if default is None:
            raise KeyError(name)
        return default
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise TypeError(f"{name} is not a number")
    result = Decimal(str(value))
    if not result.is_finite():
        raise ValueError(f"{name} is not finite")
    return result


def whole(record: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    value = record.get(name)
    if value is None:
        if default is None:
            raise KeyError(name)
        return default
    if isinstance(value, bool):
        raise TypeError(f"{name} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise TypeError(f"{name} is not a whole number")


def moment(value: Any) -> datetime | None:
    """Dhan's IST wall-clock time ("2024-09-11 14:39:29") as an aware UTC datetime; None when absent
    or a placeholder ("0001-01-01 00:00:00", "NA")."""
    if not isinstance(value, str) or not value.strip() or value.startswith("0001") or value.startswith("1980"):
        return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=IST).astimezone(UTC)
        except ValueError:
            continue
    return None


def rows(data: Any) -> list[Mapping[str, Any]]:
    """A list answer's records (an object alone counts as one record)."""
    if isinstance(data, Mapping):
        return [data]
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise TypeError("not a list of records")
    return data


@dataclass(frozen=True, slots=True)
class DhanOrder:
    order_id: str
    tag: str
    status: str
    side: str
    segment: str
    security_id: str
    product: str
    order_type: str
    quantity: int
    filled_quantity: int
    average_price: Decimal | None
    price: Decimal
    trigger_price: Decimal
    message: str
    updated_at: datetime | None


def order_of(record: Mapping[str, Any]) -> DhanOrder:
    average = number(record, "averageTradedPrice", default=Decimal(0))
    return DhanOrder(
        order_id=text(record, "orderId"),
        tag=text(record, "correlationId", required=False),
        status=text(record, "orderStatus"),
        side=text(record, "transactionType"),
        segment=text(record, "exchangeSegment"),
        security_id=text(record, "securityId"),
        product=text(record, "productType"),
        order_type=text(record, "orderType"),
        quantity=whole(record, "quantity"),
        filled_quantity=whole(record, "filledQty", default=0),
        average_price=average if average > 0 else None,
        price=number(record, "price", default=Decimal(0)),
        trigger_price=number(record, "triggerPrice", default=Decimal(0)),
        message=text(record, "omsErrorDescription", required=False),
        updated_at=moment(record.get("exchangeTime")) or moment(record.get("updateTime")),
    )


@dataclass(frozen=True, slots=True)
class DhanTrade:
    trade_id: str
    order_id: str
    segment: str
    quantity: int
    price: Decimal
    ts: datetime | None


def trade_of(record: Mapping[str, Any]) -> DhanTrade:
    return DhanTrade(
        trade_id=text(record, "exchangeTradeId"),
        order_id=text(record, "orderId"),
        segment=text(record, "exchangeSegment"),
        quantity=whole(record, "tradedQuantity"),
        price=number(record, "tradedPrice"),
        ts=moment(record.get("exchangeTime")) or moment(record.get("createTime")),
    )


def order_update_data(message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``Data`` of an order-update stream message ``{"Type": "order_alert", "Data": {...}}`` with
    its keys in lowerCamelCase (Dhan's documentation and third-party clients show both ``orderNo`` and
    ``OrderNo``); None for a message of another type. Raises ValueError for a malformed one."""
    kind = message.get("Type", message.get("type"))
    if kind != "order_alert":
        return None
    data = message.get("Data", message.get("data"))
    if not isinstance(data, Mapping):
        raise ValueError("an order alert without its Data object")
    return {(key[:1].lower() + key[1:]) if isinstance(key, str) else key: value for key, value in data.items()}
