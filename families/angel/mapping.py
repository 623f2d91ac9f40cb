"""Angel One SmartAPI's vocabulary and ours, both ways: exchanges, products, order types, validities,
varieties, sides, order statuses, the market-data websocket's exchange types, and the way our
mapping names an Angel instrument.

Angel's instrument token is unique only within its exchange segment (NSE's 2885 and BSE's 2885 are
different instruments), so the Angel mapping (``BrokerInstrument.token``, broker "angel") keeps
``"<exch_seg>:<token>"`` (``"NSE:2885"``): one key for orders, ticks, positions and order updates.
"""

from __future__ import annotations

from decimal import Decimal

FAMILY = "angel"  # the adapter's code and the broker column of its BrokerInstrument rows

# Our exchanges -> Angel's exchange (the ``exchange`` field and the master's ``exch_seg``): the same words.
EXCHANGES: dict[str, str] = {"NSE": "NSE", "BSE": "BSE", "NFO": "NFO", "BFO": "BFO", "MCX": "MCX", "CDS": "CDS"}
OUR_EXCHANGES: dict[str, str] = {angel: ours for ours, angel in EXCHANGES.items()}

# Our products -> Angel's ``producttype`` (CNC: DELIVERY, MIS: INTRADAY, NRML: CARRYFORWARD).
PRODUCTS: dict[str, str] = {"CNC": "DELIVERY", "MIS": "INTRADAY", "NRML": "CARRYFORWARD"}
# Angel's product types back to ours; MARGIN (margin delivery) is Angel's carry-forward for F&O and
# commodities in some answers, BO (bracket orders) is not ours.
OUR_PRODUCTS: dict[str, str] = {"DELIVERY": "CNC", "INTRADAY": "MIS", "CARRYFORWARD": "NRML", "MARGIN": "NRML"}

ORDER_TYPES: dict[str, str] = {
    "MARKET": "MARKET",
    "LIMIT": "LIMIT",
    "SL": "STOPLOSS_LIMIT",
    "SL-M": "STOPLOSS_MARKET",
}
OUR_ORDER_TYPES: dict[str, str] = {angel: ours for ours, angel in ORDER_TYPES.items()}
STOP_TYPES = frozenset({"SL", "SL-M"})
PRICED_TYPES = frozenset({"LIMIT", "SL"})  # a limit price is sent; the others send "0"

VALIDITIES: dict[str, str] = {"DAY": "DAY", "IOC": "IOC"}
SIDES: dict[str, str] = {"BUY": "BUY", "SELL": "SELL"}

# Angel's ``variety``: NORMAL for a regular order, STOPLOSS for a stop-loss order (Angel's order
# types STOPLOSS_LIMIT and STOPLOSS_MARKET go with it), AMO for an after-market order.
VARIETY_NORMAL, VARIETY_STOPLOSS, VARIETY_AMO = "NORMAL", "STOPLOSS", "AMO"
ANGEL_VARIETIES = frozenset({VARIETY_NORMAL, VARIETY_STOPLOSS, VARIETY_AMO, "ROBO"})

# Angel's order statuses (lowercase words, the book's ``status`` and the order update's
# ``orderData.status``) in the OMS vocabulary. The transitional ones (a request on its way through
# Angel's OMS or the exchange) leave the order as it is: None.
STATUSES: dict[str, str | None] = {
    "open": "OPEN",
    "trigger pending": "TRIGGER_PENDING",
    "complete": "FILLED",
    "cancelled": "CANCELLED",
    "rejected": "REJECTED",
    "cancelled after market order": "CANCELLED",
    "open pending": None,
    "validation pending": None,
    "put order req received": None,
    "modify validation pending": None,
    "modify pending": None,
    "modified": None,
    "cancel pending": None,
    "trigger pending validation": None,
    "after market order req received": None,
    "modify after market order req received": None,
}

# The market-data websocket's ``exchangeType`` per Angel exchange segment (SmartWebSocketV2).
EXCHANGE_TYPES: dict[str, int] = {"NSE": 1, "NFO": 2, "BSE": 3, "BFO": 4, "MCX": 5, "NCDEX": 7, "CDS": 13}
SEGMENTS_BY_TYPE: dict[int, str] = {number: segment for segment, number in EXCHANGE_TYPES.items()}
# Prices on the websocket are integers: paise (1/100 rupee); currency derivatives in 1/10^7 rupee.
PRICE_DIVISORS: dict[int, Decimal] = {13: Decimal(10_000_000)}
PAISE = Decimal(100)


def status_of(angel_status: str, *, current: str) -> str:
    """Angel's status in the OMS vocabulary; a transitional or unknown one keeps ``current``."""
    mapped = STATUSES.get(angel_status.strip().lower())
    return current if mapped is None else mapped


def is_transitional(angel_status: str) -> bool:
    """True for a status that says nothing new about the order (on its way through Angel's OMS)."""
    return STATUSES.get(angel_status.strip().lower()) is None


def variety_for(variety: str, order_type: str) -> str:
    """Angel's ``variety`` for our variety ("regular", "amo") and order type. Raises ValueError for a
    variety Angel does not take."""
    if variety == "amo":
        return VARIETY_AMO
    if variety == "regular":
        return VARIETY_STOPLOSS if order_type in STOP_TYPES else VARIETY_NORMAL
    raise ValueError(f"Angel One has no {variety!r} orders")


def token_key(segment: str, token: str | int) -> str:
    """Our mapping's key for Angel's instrument ``token`` of exchange segment ``segment``."""
    return f"{segment}:{token}"


def split_token(key: str) -> tuple[str, str]:
    """(exchange segment, Angel token) of a mapping key; raises ValueError for one not so made."""
    segment, sep, token = key.partition(":")
    if not sep or not segment or not token:
        raise ValueError(f"{key!r} is not an Angel mapping token (EXCHANGE:token)")
    return segment, token


def amount(value: Decimal) -> str:
    """A price as Angel's JSON strings carry it: plain decimal notation, never an exponent."""
    return f"{value:f}"
