"""GTT (good till triggered) requests to place or modify, and the GTTs Kite returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from kite.records.parse import dec, items, kite_time, num, obj, opt_num, opt_text, text, wire

GTT_SINGLE = "single"
GTT_TWO_LEG = "two-leg"


# --- GTT -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GttLeg:
    """One order a GTT places when its trigger is hit (Kite accepts LIMIT orders only)."""

    transaction_type: str
    quantity: int
    price: Decimal
    product: str = "CNC"
    order_type: str = "LIMIT"


@dataclass(frozen=True, slots=True)
class GttRequest:
    """A GTT to place or modify: ``single`` (one trigger, one leg) or ``two-leg`` (OCO: two triggers,
    the stop-loss first and the target second, with one leg each, in the same order)."""

    type: str
    exchange: str
    tradingsymbol: str
    trigger_values: tuple[Decimal, ...]
    last_price: Decimal
    legs: tuple[GttLeg, ...]

    def __post_init__(self) -> None:
        expected = {GTT_SINGLE: 1, GTT_TWO_LEG: 2}.get(self.type)
        if expected is None:
            raise ValueError(f"GTT type is {GTT_SINGLE!r} or {GTT_TWO_LEG!r}")
        if len(self.trigger_values) != expected or len(self.legs) != expected:
            raise ValueError(f"a {self.type} GTT has {expected} trigger value(s) and {expected} leg(s)")

    @classmethod
    def single(
        cls, *, exchange: str, tradingsymbol: str, trigger_value: Decimal, last_price: Decimal, leg: GttLeg
    ) -> GttRequest:
        return cls(GTT_SINGLE, exchange, tradingsymbol, (trigger_value,), last_price, (leg,))

    @classmethod
    def oco(
        cls,
        *,
        exchange: str,
        tradingsymbol: str,
        last_price: Decimal,
        stoploss: tuple[Decimal, GttLeg],
        target: tuple[Decimal, GttLeg],
    ) -> GttRequest:
        return cls(GTT_TWO_LEG, exchange, tradingsymbol, (stoploss[0], target[0]), last_price, (stoploss[1], target[1]))

    def form(self) -> list[tuple[str, str]]:
        """``type`` plus ``condition`` and ``orders`` as JSON strings, as the GTT docs specify."""
        import json

        condition = {
            "exchange": self.exchange,
            "tradingsymbol": self.tradingsymbol,
            "trigger_values": [_json_number(v) for v in self.trigger_values],
            "last_price": _json_number(self.last_price),
        }
        orders = [
            {
                "exchange": self.exchange,
                "tradingsymbol": self.tradingsymbol,
                "transaction_type": leg.transaction_type,
                "quantity": leg.quantity,
                "order_type": leg.order_type,
                "product": leg.product,
                "price": _json_number(leg.price),
            }
            for leg in self.legs
        ]
        return [
            ("type", self.type),
            ("condition", json.dumps(condition, separators=(",", ":"))),
            ("orders", json.dumps(orders, separators=(",", ":"))),
        ]


def _json_number(value: Decimal) -> float:
    """A Decimal as a JSON number: the float's shortest repr gives back the same digits for any price
    of up to 15 significant digits, and a value that would not survive the trip is refused."""
    wire(value)  # refuses non-finite and non-Decimal values
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{value} has more digits than a JSON number carries exactly")
    return as_float


@dataclass(frozen=True, slots=True)
class KiteGttOrder:
    exchange: str
    tradingsymbol: str
    transaction_type: str
    quantity: int
    order_type: str
    product: str
    price: Decimal
    result_order_id: str | None  # the order the trigger placed, once it fired


@dataclass(frozen=True, slots=True)
class KiteGtt:
    id: int
    type: str
    status: str
    exchange: str
    tradingsymbol: str
    instrument_token: int | None
    trigger_values: tuple[Decimal, ...]
    last_price: Decimal
    orders: tuple[KiteGttOrder, ...]
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None


def _gtt_order_from(d: Mapping[str, Any]) -> KiteGttOrder:
    result = d.get("result")
    order_id = None
    if isinstance(result, dict):
        placed = result.get("order_result")
        if isinstance(placed, dict):
            order_id = opt_text(placed.get("order_id")) or None
    return KiteGttOrder(
        exchange=text(d.get("exchange")),
        tradingsymbol=text(d.get("tradingsymbol")),
        transaction_type=text(d["transaction_type"]),
        quantity=num(d["quantity"]),
        order_type=text(d.get("order_type")),
        product=text(d.get("product")),
        price=dec(d["price"]),
        result_order_id=order_id,
    )


def gtt_from(d: Any) -> KiteGtt:
    d = obj(d)
    condition = obj(d["condition"])
    trigger_values = condition["trigger_values"]
    if not isinstance(trigger_values, list):
        raise TypeError("trigger_values is not a list")
    return KiteGtt(
        id=num(d["id"]),
        type=text(d["type"]),
        status=text(d["status"]),
        exchange=text(condition.get("exchange")),
        tradingsymbol=text(condition.get("tradingsymbol")),
        instrument_token=opt_num(condition.get("instrument_token")),
        trigger_values=tuple(dec(v) for v in trigger_values),
        last_price=dec(condition.get("last_price") or 0),
        orders=tuple(_gtt_order_from(o) for o in items(d["orders"])),
        created_at=kite_time(d.get("created_at")),
        updated_at=kite_time(d.get("updated_at")),
        expires_at=kite_time(d.get("expires_at")),
    )


def trigger_id_from(d: Any) -> int:
    return num(obj(d)["trigger_id"])
