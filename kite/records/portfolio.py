"""Positions, holdings and the margins of each segment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kite.records.parse import dec, items, num, obj, opt_num, text

MARGIN_SEGMENTS = ("equity", "commodity")


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
