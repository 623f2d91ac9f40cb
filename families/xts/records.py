"""XTS's answers read into typed values: orders, trades, positions, holdings, the balance and quotes.

Field names follow the XTS Interactive and Market Data APIs (the order book's ``AppOrderID``,
``OrderStatus``, ``OrderUniqueIdentifier``...; the trade book's ``ExecutionID``, ``LastTradedPrice``,
``LastTradedQuantity``...). XTS sends some numbers as strings (``OrderAverageTradedPrice``), so every
number is read from either; times are IST wall-clock strings. Each reader raises ``KeyError``,
``TypeError`` or ``ValueError`` for a row out of shape (the client turns that into BrokerUnavailable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
_TIME_FORMATS = ("%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%b %d %Y %H:%M:%S")


def dec(value: Any, *, default: Decimal | None = None) -> Decimal | None:
    """A price as a Decimal from a JSON number or a numeric string; ``default`` for null or "".
    Raises ValueError for anything else (NaN, infinities, text)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError("a price is not a boolean")
    if isinstance(value, Decimal | int | str | float):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{str(value)[:20]!r} is not a number") from None
        if not number.is_finite():
            raise ValueError("a price is finite")
        return number
    raise TypeError(f"a price is a number, not {type(value).__name__}")


def qty(value: Any) -> int:
    """A quantity as an int from a JSON number or a numeric string (null or "" is 0). Raises ValueError
    for a fractional or non-numeric one."""
    number = dec(value, default=Decimal(0))
    assert number is not None
    if number != number.to_integral_value():
        raise ValueError(f"quantity {number} is not whole")
    return int(number)


def text(value: Any) -> str:
    """A field as text (numbers as their digits: XTS sends ids as numbers or strings)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"expected text, got {type(value).__name__}")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError("an id is whole")
        return str(int(value))
    return str(value).strip()


def when(value: Any) -> datetime | None:
    """An XTS time (IST wall clock, "14-09-2020 12:58:35" or ISO-like) as an aware UTC datetime; None
    when absent or in no format we know (the caller falls back to now)."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=IST).astimezone(UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class XtsOrder:
    app_order_id: str
    tag: str
    status: str
    segment: str
    instrument_id: int
    side: str
    order_type: str
    product: str
    validity: str
    quantity: int
    filled_quantity: int
    pending_quantity: int
    price: Decimal
    trigger_price: Decimal
    average_price: Decimal | None
    message: str
    updated_at: datetime | None
    # the last execution, where the message carries one (the interactive socket's order and trade events)
    execution_id: str = ""
    last_price: Decimal | None = None
    last_quantity: int = 0
    executed_at: datetime | None = None


def order_from(row: Mapping[str, Any]) -> XtsOrder:
    """One order-book row, order-history entry or interactive-socket order/trade message."""
    if not isinstance(row, Mapping):
        raise TypeError("an XTS order is an object")
    app_order_id = text(row["AppOrderID"])
    if not app_order_id.isdigit():
        raise ValueError("AppOrderID is a number")
    average = dec(row.get("OrderAverageTradedPrice"))
    return XtsOrder(
        app_order_id=app_order_id,
        tag=text(row.get("OrderUniqueIdentifier")),
        status=text(row["OrderStatus"]),
        segment=text(row.get("ExchangeSegment")),
        instrument_id=qty(row.get("ExchangeInstrumentID")),
        side=text(row.get("OrderSide")).upper(),
        order_type=text(row.get("OrderType")),
        product=text(row.get("ProductType")).upper(),
        validity=text(row.get("TimeInForce")).upper(),
        quantity=qty(row.get("OrderQuantity")),
        filled_quantity=qty(row.get("CumulativeQuantity")),
        pending_quantity=qty(row.get("LeavesQuantity")),
        price=dec(row.get("OrderPrice"), default=Decimal(0)) or Decimal(0),
        trigger_price=dec(row.get("OrderStopPrice"), default=Decimal(0)) or Decimal(0),
        average_price=average if average else None,
        message=text(row.get("CancelRejectReason")),
        updated_at=when(row.get("LastUpdateDateTime")) or when(row.get("OrderGeneratedDateTime")),
        execution_id=text(row.get("ExecutionID")),
        last_price=dec(row.get("LastTradedPrice")),
        last_quantity=qty(row.get("LastTradedQuantity")),
        executed_at=when(row.get("LastExecutionTransactTime")) or when(row.get("ExchangeTransactTime")),
    )


@dataclass(frozen=True, slots=True)
class XtsTrade:
    execution_id: str
    app_order_id: str
    tag: str
    segment: str
    instrument_id: int
    quantity: int
    price: Decimal
    ts: datetime | None


def trade_from(row: Mapping[str, Any]) -> XtsTrade:
    """One trade-book row (one execution)."""
    if not isinstance(row, Mapping):
        raise TypeError("an XTS trade is an object")
    execution_id = text(row["ExecutionID"])
    price = dec(row["LastTradedPrice"])
    quantity = qty(row["LastTradedQuantity"])
    if not execution_id or price is None or price <= 0 or quantity <= 0:
        raise ValueError("a trade has an execution id, a price and a quantity")
    return XtsTrade(
        execution_id=execution_id,
        app_order_id=text(row["AppOrderID"]),
        tag=text(row.get("OrderUniqueIdentifier")),
        segment=text(row.get("ExchangeSegment")),
        instrument_id=qty(row.get("ExchangeInstrumentID")),
        quantity=quantity,
        price=price,
        ts=when(row.get("LastExecutionTransactTime")) or when(row.get("ExchangeTransactTime")),
    )


@dataclass(frozen=True, slots=True)
class XtsPosition:
    segment: str
    instrument_id: int
    product: str
    quantity: int
    average_price: Decimal | None


def positions_from(result: Any) -> list[XtsPosition]:
    """``result.positionList`` of the net-wise positions (XTS spells the id ``ExchangeInstrumentId`` here)."""
    rows = result["positionList"] if isinstance(result, Mapping) else result
    if not isinstance(rows, list):
        raise TypeError("positionList is a list")
    positions = []
    for row in rows:
        quantity = qty(row["Quantity"])
        average = dec(row.get("BuyAveragePrice") if quantity > 0 else row.get("SellAveragePrice"))
        positions.append(
            XtsPosition(
                segment=text(row["ExchangeSegment"]),
                instrument_id=qty(row.get("ExchangeInstrumentId", row.get("ExchangeInstrumentID"))),
                product=text(row.get("ProductType")).upper(),
                quantity=quantity,
                average_price=average if average else None,
            )
        )
    return positions


@dataclass(frozen=True, slots=True)
class XtsHolding:
    isin: str
    nse_instrument_id: int
    bse_instrument_id: int
    quantity: int
    average_price: Decimal


def holdings_from(result: Any) -> list[XtsHolding]:
    """``result.RMSHoldings.Holdings``: an object of holdings by ISIN."""
    if not isinstance(result, Mapping):
        raise TypeError("the holdings answer is an object")
    holdings = result["RMSHoldings"]["Holdings"] or {}
    if not isinstance(holdings, Mapping):
        raise TypeError("Holdings is an object by ISIN")
    out = []
    for isin, row in holdings.items():
        out.append(
            XtsHolding(
                isin=str(isin),
                nse_instrument_id=qty(row.get("ExchangeNSEInstrumentId")),
                bse_instrument_id=qty(row.get("ExchangeBSEInstrumentId")),
                quantity=qty(row["HoldingQuantity"]),
                average_price=dec(row.get("BuyAvgPrice"), default=Decimal(0)) or Decimal(0),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class XtsBalance:
    cash: Decimal
    margin_used: Decimal
    available: Decimal
    collateral: Decimal


def balance_from(result: Any) -> XtsBalance:
    """``result.BalanceList[0].limitObject.RMSSubLimits``: cash available, margin utilised, net margin available."""
    limits = result["BalanceList"][0]["limitObject"]["RMSSubLimits"]
    zero = Decimal(0)
    return XtsBalance(
        cash=dec(limits["cashAvailable"], default=zero) or zero,
        margin_used=dec(limits["marginUtilized"], default=zero) or zero,
        available=dec(limits["netMarginAvailable"], default=zero) or zero,
        collateral=dec(limits.get("collateral"), default=zero) or zero,
    )
