"""The session, the profile, a new order's parameters, and the order and trade books' records."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from kite.records.parse import dec, kite_time, num, obj, opt_dec, opt_num, opt_text, strings, text, wire

VARIETIES = ("regular", "amo", "co", "iceberg")

_TAG = re.compile(r"[A-Za-z0-9]{1,20}")


# --- session and profile ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KiteProfile:
    user_id: str
    user_name: str
    user_shortname: str
    email: str
    user_type: str
    broker: str
    exchanges: tuple[str, ...]
    products: tuple[str, ...]
    order_types: tuple[str, ...]


def profile_from(d: Mapping[str, Any]) -> KiteProfile:
    d = obj(d)
    return KiteProfile(
        user_id=text(d["user_id"]),
        user_name=text(d.get("user_name")),
        user_shortname=text(d.get("user_shortname")),
        email=text(d.get("email")),
        user_type=text(d.get("user_type")),
        broker=text(d.get("broker")),
        exchanges=strings(d.get("exchanges")),
        products=strings(d.get("products")),
        order_types=strings(d.get("order_types")),
    )


@dataclass(frozen=True, slots=True)
class KiteSession:
    """The answer to the token exchange. The tokens stay out of ``repr`` (and so out of logs)."""

    profile: KiteProfile
    api_key: str
    access_token: str = field(repr=False)
    public_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    login_time: datetime | None


def session_from(d: Mapping[str, Any]) -> KiteSession:
    d = obj(d)
    access_token = text(d["access_token"])
    if not access_token:
        raise ValueError("empty access_token")
    return KiteSession(
        profile=profile_from(d),
        api_key=text(d.get("api_key")),
        access_token=access_token,
        public_token=text(d.get("public_token")),
        refresh_token=text(d.get("refresh_token")),
        login_time=kite_time(d.get("login_time")),
    )


# --- orders and trades -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KiteOrderParams:
    """A new order's fields (https://kite.trade/docs/connect/v3/orders/). ``tag`` is at most 20
    letters and digits; ``market_protection`` is 0 (none), 1..100 (a percentage) or -1 (automatic);
    ``iceberg_legs``/``iceberg_quantity`` are for the iceberg variety, ``validity_ttl`` for TTL."""

    exchange: str
    tradingsymbol: str
    transaction_type: str
    quantity: int
    product: str
    order_type: str
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    validity: str = "DAY"
    validity_ttl: int | None = None
    disclosed_quantity: int | None = None
    iceberg_legs: int | None = None
    iceberg_quantity: int | None = None
    tag: str | None = None
    market_protection: int | None = None

    def __post_init__(self) -> None:
        if self.tag is not None and not _TAG.fullmatch(self.tag):
            raise ValueError("tag must be 1 to 20 letters or digits")
        check_market_protection(self.market_protection)
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")

    def form(self, variety: str) -> list[tuple[str, str]]:
        if variety == "iceberg" and (self.iceberg_legs is None or self.iceberg_quantity is None):
            raise ValueError("an iceberg order needs iceberg_legs and iceberg_quantity")
        if variety != "iceberg" and (self.iceberg_legs is not None or self.iceberg_quantity is not None):
            raise ValueError("iceberg_legs and iceberg_quantity are for the iceberg variety only")
        fields: list[tuple[str, str]] = [
            ("exchange", self.exchange),
            ("tradingsymbol", self.tradingsymbol),
            ("transaction_type", self.transaction_type),
            ("quantity", wire(self.quantity)),
            ("product", self.product),
            ("order_type", self.order_type),
            ("validity", self.validity),
        ]
        optional = {
            "price": self.price,
            "trigger_price": self.trigger_price,
            "validity_ttl": self.validity_ttl,
            "disclosed_quantity": self.disclosed_quantity,
            "iceberg_legs": self.iceberg_legs,
            "iceberg_quantity": self.iceberg_quantity,
            "market_protection": self.market_protection,
        }
        fields += [(name, wire(value)) for name, value in optional.items() if value is not None]
        if self.tag is not None:
            fields.append(("tag", self.tag))
        return fields


def check_market_protection(value: int | None) -> None:
    if value is not None and not (value == -1 or 0 <= value <= 100):
        raise ValueError("market_protection is -1 (automatic), 0 (none) or a percentage up to 100")


@dataclass(frozen=True, slots=True)
class KiteOrder:
    """One order, from the order book or one state of an order's history."""

    order_id: str
    parent_order_id: str | None
    exchange_order_id: str | None
    status: str
    status_message: str
    variety: str
    exchange: str
    tradingsymbol: str
    instrument_token: int | None
    transaction_type: str
    order_type: str
    product: str
    validity: str
    quantity: int
    pending_quantity: int
    filled_quantity: int
    cancelled_quantity: int
    disclosed_quantity: int
    price: Decimal | None
    trigger_price: Decimal | None
    average_price: Decimal | None
    tag: str | None
    tags: tuple[str, ...]
    order_timestamp: datetime | None
    exchange_timestamp: datetime | None
    exchange_update_timestamp: datetime | None
    market_protection: Decimal | None
    placed_by: str
    guid: str


def order_from(d: Mapping[str, Any]) -> KiteOrder:
    d = obj(d)
    order_id = text(d["order_id"])
    if not order_id:
        raise ValueError("empty order_id")
    return KiteOrder(
        order_id=order_id,
        parent_order_id=opt_text(d.get("parent_order_id")),
        exchange_order_id=opt_text(d.get("exchange_order_id")),
        status=text(d["status"]),
        status_message=text(d.get("status_message")),
        variety=text(d.get("variety")),
        exchange=text(d.get("exchange")),
        tradingsymbol=text(d.get("tradingsymbol")),
        instrument_token=opt_num(d.get("instrument_token")),
        transaction_type=text(d.get("transaction_type")),
        order_type=text(d.get("order_type")),
        product=text(d.get("product")),
        validity=text(d.get("validity")),
        quantity=num(d.get("quantity", 0)),
        pending_quantity=num(d.get("pending_quantity") or 0),
        filled_quantity=num(d.get("filled_quantity") or 0),
        cancelled_quantity=num(d.get("cancelled_quantity") or 0),
        disclosed_quantity=num(d.get("disclosed_quantity") or 0),
        price=opt_dec(d.get("price")),
        trigger_price=opt_dec(d.get("trigger_price")),
        average_price=opt_dec(d.get("average_price")),
        tag=opt_text(d.get("tag")),
        tags=strings(d.get("tags")),
        order_timestamp=kite_time(d.get("order_timestamp")),
        exchange_timestamp=kite_time(d.get("exchange_timestamp")),
        exchange_update_timestamp=kite_time(d.get("exchange_update_timestamp")),
        market_protection=opt_dec(d.get("market_protection")),
        placed_by=text(d.get("placed_by")),
        guid=text(d.get("guid")),
    )


@dataclass(frozen=True, slots=True)
class KiteTrade:
    trade_id: str
    order_id: str
    exchange_order_id: str | None
    exchange: str
    tradingsymbol: str
    instrument_token: int | None
    product: str
    transaction_type: str
    quantity: int
    average_price: Decimal
    fill_timestamp: datetime | None
    exchange_timestamp: datetime | None
    order_timestamp: datetime | None  # None when Kite sends only a time of day


def trade_from(d: Mapping[str, Any]) -> KiteTrade:
    d = obj(d)
    trade_id, order_id = text(d["trade_id"]), text(d["order_id"])
    if not trade_id or not order_id:
        raise ValueError("empty trade_id or order_id")
    return KiteTrade(
        trade_id=trade_id,
        order_id=order_id,
        exchange_order_id=opt_text(d.get("exchange_order_id")),
        exchange=text(d.get("exchange")),
        tradingsymbol=text(d.get("tradingsymbol")),
        instrument_token=opt_num(d.get("instrument_token")),
        product=text(d.get("product")),
        transaction_type=text(d.get("transaction_type")),
        quantity=num(d["quantity"]),
        average_price=dec(d["average_price"]),
        fill_timestamp=kite_time(d.get("fill_timestamp")),
        exchange_timestamp=kite_time(d.get("exchange_timestamp")),
        order_timestamp=kite_time(d.get("order_timestamp")),
    )
