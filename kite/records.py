"""The typed values ``KiteClient`` returns and takes, and their parsing from Kite's JSON.

Prices and amounts are ``Decimal`` (the JSON is decoded with ``parse_float=Decimal``, so no float
rounding happens on the way); timestamps, which Kite sends as ``"YYYY-MM-DD HH:MM:SS"`` in IST
without a zone, become aware datetimes in UTC. A parser raises ``ValueError``/``KeyError``/
``TypeError`` on a shape it does not know; the client turns that into ``BrokerUnavailable``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")

VARIETIES = ("regular", "amo", "co", "iceberg")
GTT_SINGLE = "single"
GTT_TWO_LEG = "two-leg"
MARGIN_SEGMENTS = ("equity", "commodity")

_TAG = re.compile(r"[A-Za-z0-9]{1,20}")
_IST_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_TIME_ONLY = re.compile(r"\d{2}:\d{2}:\d{2}")
_MAX_INT = 2**63


# --- field readers ---------------------------------------------------------------------------------


def kite_time(value: Any) -> datetime | None:
    """Kite's IST wall-clock stamp (or an ISO stamp with an offset) as an aware UTC datetime.

    None, "" and a bare ``HH:MM:SS`` (the trade book's ``order_timestamp``) give None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("timestamp is not a string")
    if _IST_STAMP.fullmatch(value):
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST).astimezone(UTC)
    if _TIME_ONLY.fullmatch(value):
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=IST)
    return parsed.astimezone(UTC)


def dec(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise TypeError("not a number")
    if isinstance(value, Decimal | int):
        result = Decimal(value)
    elif isinstance(value, str):
        result = Decimal(value.strip())
    else:
        raise TypeError("not a number")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None or value == "" else dec(value)


def num(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise TypeError("not an integer")
    if isinstance(value, int):
        result = value
    else:
        number = dec(value)
        if abs(number) > _MAX_INT or number != number.to_integral_value():
            raise ValueError("not an integer in range")
        result = int(number)
    if abs(result) > _MAX_INT:
        raise ValueError("integer out of range")
    return result


def opt_num(value: Any) -> int | None:
    return None if value is None or value == "" else num(value)


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError("not a string")


def opt_text(value: Any) -> str | None:
    return None if value is None else text(value)


def strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TypeError("not a list")
    return tuple(text(v) for v in value)


def obj(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return value


def items(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return [obj(v) for v in value]


def wire(value: Decimal | int) -> str:
    """A number as Kite's form fields take it (no exponent, no float noise)."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{value!r} is not a finite Decimal")
    return format(value, "f")


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


# --- portfolio and funds ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KitePosition:
    tradingsymbol: str
    exchange: str
    instrument_token: int | None
    product: str
    quantity: int
    overnight_quantity: int
    multiplier: Decimal
    average_price: Decimal
    close_price: Decimal
    last_price: Decimal
    value: Decimal
    pnl: Decimal
    m2m: Decimal
    unrealised: Decimal
    realised: Decimal
    buy_quantity: int
    buy_price: Decimal
    buy_value: Decimal
    sell_quantity: int
    sell_price: Decimal
    sell_value: Decimal
    day_buy_quantity: int
    day_buy_price: Decimal
    day_buy_value: Decimal
    day_sell_quantity: int
    day_sell_price: Decimal
    day_sell_value: Decimal


_POSITION_INTS = (
    "quantity",
    "overnight_quantity",
    "buy_quantity",
    "sell_quantity",
    "day_buy_quantity",
    "day_sell_quantity",
)
_POSITION_DECIMALS = [
    "multiplier",
    "average_price",
    "close_price",
    "last_price",
    "value",
    "pnl",
    "m2m",
    "unrealised",
    "realised",
    "buy_price",
    "buy_value",
    "sell_price",
    "sell_value",
    "day_buy_price",
    "day_buy_value",
    "day_sell_price",
    "day_sell_value",
]


def position_from(d: Mapping[str, Any]) -> KitePosition:
    d = obj(d)
    return KitePosition(
        tradingsymbol=text(d["tradingsymbol"]),
        exchange=text(d["exchange"]),
        instrument_token=opt_num(d.get("instrument_token")),
        product=text(d.get("product")),
        **{name: num(d.get(name) or 0) for name in _POSITION_INTS},
        **{name: dec(d.get(name) or 0) for name in _POSITION_DECIMALS},
    )


@dataclass(frozen=True, slots=True)
class KitePositions:
    net: tuple[KitePosition, ...]
    day: tuple[KitePosition, ...]


def positions_from(d: Any) -> KitePositions:
    d = obj(d)
    return KitePositions(
        net=tuple(position_from(p) for p in items(d["net"])),
        day=tuple(position_from(p) for p in items(d["day"])),
    )


@dataclass(frozen=True, slots=True)
class KiteHolding:
    tradingsymbol: str
    exchange: str
    instrument_token: int | None
    isin: str
    product: str
    quantity: int
    t1_quantity: int
    realised_quantity: int
    used_quantity: int
    collateral_quantity: int
    average_price: Decimal
    last_price: Decimal
    close_price: Decimal
    pnl: Decimal
    day_change: Decimal
    day_change_percentage: Decimal


def holding_from(d: Mapping[str, Any]) -> KiteHolding:
    d = obj(d)
    return KiteHolding(
        tradingsymbol=text(d["tradingsymbol"]),
        exchange=text(d["exchange"]),
        instrument_token=opt_num(d.get("instrument_token")),
        isin=text(d.get("isin")),
        product=text(d.get("product")),
        **{
            name: num(d.get(name) or 0)
            for name in ("quantity", "t1_quantity", "realised_quantity", "used_quantity", "collateral_quantity")
        },
        **{
            name: dec(d.get(name) or 0)
            for name in ("average_price", "last_price", "close_price", "pnl", "day_change", "day_change_percentage")
        },
    )


@dataclass(frozen=True, slots=True)
class KiteAvailableMargin:
    adhoc_margin: Decimal
    cash: Decimal
    opening_balance: Decimal
    live_balance: Decimal
    collateral: Decimal
    intraday_payin: Decimal


@dataclass(frozen=True, slots=True)
class KiteUtilisedMargin:
    debits: Decimal
    exposure: Decimal
    m2m_realised: Decimal
    m2m_unrealised: Decimal
    option_premium: Decimal
    payout: Decimal
    span: Decimal
    holding_sales: Decimal
    turnover: Decimal
    liquid_collateral: Decimal
    stock_collateral: Decimal
    delivery: Decimal


@dataclass(frozen=True, slots=True)
class KiteSegmentMargins:
    enabled: bool
    net: Decimal
    available: KiteAvailableMargin
    utilised: KiteUtilisedMargin


@dataclass(frozen=True, slots=True)
class KiteMargins:
    equity: KiteSegmentMargins | None
    commodity: KiteSegmentMargins | None


def _fields_of(cls: type, d: Any) -> dict[str, Decimal]:
    d = obj(d)
    return {name: dec(d.get(name) or 0) for name in cls.__dataclass_fields__}


def segment_margins_from(d: Any) -> KiteSegmentMargins:
    d = obj(d)
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        raise TypeError("enabled is not a bool")
    return KiteSegmentMargins(
        enabled=enabled,
        net=dec(d.get("net") or 0),
        available=KiteAvailableMargin(**_fields_of(KiteAvailableMargin, d["available"])),
        utilised=KiteUtilisedMargin(**_fields_of(KiteUtilisedMargin, d["utilised"])),
    )


def margins_from(d: Any) -> KiteMargins:
    d = obj(d)
    equity, commodity = d.get("equity"), d.get("commodity")
    return KiteMargins(
        equity=None if equity is None else segment_margins_from(equity),
        commodity=None if commodity is None else segment_margins_from(commodity),
    )


# --- market quotes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KiteOHLC:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def ohlc_from(d: Any) -> KiteOHLC:
    d = obj(d)
    return KiteOHLC(open=dec(d["open"]), high=dec(d["high"]), low=dec(d["low"]), close=dec(d["close"]))


@dataclass(frozen=True, slots=True)
class KiteDepthLevel:
    price: Decimal
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class KiteQuote:
    instrument: str  # EXCHANGE:TRADINGSYMBOL, as asked
    instrument_token: int
    timestamp: datetime | None
    last_trade_time: datetime | None
    last_price: Decimal
    last_quantity: int
    average_price: Decimal
    volume: int
    buy_quantity: int
    sell_quantity: int
    oi: int
    oi_day_high: int
    oi_day_low: int
    net_change: Decimal
    lower_circuit_limit: Decimal | None
    upper_circuit_limit: Decimal | None
    ohlc: KiteOHLC
    bids: tuple[KiteDepthLevel, ...]
    asks: tuple[KiteDepthLevel, ...]


def _depth(levels: Any) -> tuple[KiteDepthLevel, ...]:
    return tuple(
        KiteDepthLevel(price=dec(level["price"]), quantity=num(level["quantity"]), orders=num(level.get("orders") or 0))
        for level in items(levels or [])
    )


def quote_from(instrument: str, d: Any) -> KiteQuote:
    d = obj(d)
    depth = obj(d.get("depth") or {"buy": [], "sell": []})
    return KiteQuote(
        instrument=instrument,
        instrument_token=num(d["instrument_token"]),
        timestamp=kite_time(d.get("timestamp")),
        last_trade_time=kite_time(d.get("last_trade_time")),
        last_price=dec(d["last_price"]),
        last_quantity=num(d.get("last_quantity") or 0),
        average_price=dec(d.get("average_price") or 0),
        volume=num(d.get("volume") or 0),
        buy_quantity=num(d.get("buy_quantity") or 0),
        sell_quantity=num(d.get("sell_quantity") or 0),
        oi=num(d.get("oi") or 0),
        oi_day_high=num(d.get("oi_day_high") or 0),
        oi_day_low=num(d.get("oi_day_low") or 0),
        net_change=dec(d.get("net_change") or 0),
        lower_circuit_limit=opt_dec(d.get("lower_circuit_limit")),
        upper_circuit_limit=opt_dec(d.get("upper_circuit_limit")),
        ohlc=ohlc_from(d["ohlc"]),
        bids=_depth(depth.get("buy")),
        asks=_depth(depth.get("sell")),
    )


@dataclass(frozen=True, slots=True)
class KiteLTP:
    instrument: str
    instrument_token: int
    last_price: Decimal


def ltp_from(instrument: str, d: Any) -> KiteLTP:
    d = obj(d)
    return KiteLTP(instrument=instrument, instrument_token=num(d["instrument_token"]), last_price=dec(d["last_price"]))


@dataclass(frozen=True, slots=True)
class KiteOHLCQuote:
    instrument: str
    instrument_token: int
    last_price: Decimal
    ohlc: KiteOHLC


def ohlc_quote_from(instrument: str, d: Any) -> KiteOHLCQuote:
    d = obj(d)
    return KiteOHLCQuote(
        instrument=instrument,
        instrument_token=num(d["instrument_token"]),
        last_price=dec(d["last_price"]),
        ohlc=ohlc_from(d["ohlc"]),
    )


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


# --- instruments -----------------------------------------------------------------------------------

INSTRUMENT_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


@dataclass(frozen=True, slots=True)
class KiteInstrument:
    """One row of the instruments dump (``GET /instruments``)."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: Decimal
    expiry: date | None
    strike: Decimal
    tick_size: Decimal
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str


def instrument_from(row: list[str]) -> KiteInstrument:
    if len(row) != len(INSTRUMENT_COLUMNS):
        raise ValueError(f"{len(row)} columns, expected {len(INSTRUMENT_COLUMNS)}")
    values = dict(zip(INSTRUMENT_COLUMNS, row, strict=True))
    expiry = values["expiry"].strip()
    return KiteInstrument(
        instrument_token=num(values["instrument_token"]),
        exchange_token=num(values["exchange_token"]),
        tradingsymbol=values["tradingsymbol"],
        name=values["name"],
        last_price=dec(values["last_price"] or "0"),
        expiry=date.fromisoformat(expiry) if expiry else None,
        strike=dec(values["strike"] or "0"),
        tick_size=dec(values["tick_size"] or "0"),
        lot_size=num(values["lot_size"] or "0"),
        instrument_type=values["instrument_type"],
        segment=values["segment"],
        exchange=values["exchange"],
    )
