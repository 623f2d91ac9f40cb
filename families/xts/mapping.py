"""XTS's vocabulary and ours, both ways: exchange segments (by name in the REST API, by number in the
market-data API), products, order types, validities, sides and order statuses; and the family's
instrument token.

Facts from symphonyfintech/xts-pythonclient-api-sdk (Connect.py's constants, Example.py's instrument
lists) and the XTS order-book fields; see docs/brokers.md, "xts", for what is verified where.
"""

from __future__ import annotations

from typing import Final

# Our exchange -> XTS's exchange segment (the REST API's names).
SEGMENTS: Final[dict[str, str]] = {
    "NSE": "NSECM",
    "NFO": "NSEFO",
    "CDS": "NSECD",
    "BSE": "BSECM",
    "BFO": "BSEFO",
    "MCX": "MCXFO",
}
EXCHANGES: Final[dict[str, str]] = {segment: exchange for exchange, segment in SEGMENTS.items()}
# XTS's segment names and the numbers its market-data API (subscriptions, quotes, ticks) uses for them.
SEGMENT_NUMBERS: Final[dict[str, int]] = {"NSECM": 1, "NSEFO": 2, "NSECD": 3, "BSECM": 11, "BSEFO": 12, "MCXFO": 51}
SEGMENT_NAMES: Final[dict[int, str]] = {number: name for name, number in SEGMENT_NUMBERS.items()}

PRODUCTS: Final[frozenset[str]] = frozenset({"CNC", "MIS", "NRML"})  # the same words both ways
ORDER_TYPES: Final[dict[str, str]] = {"MARKET": "MARKET", "LIMIT": "LIMIT", "SL": "STOPLIMIT", "SL-M": "STOPMARKET"}
# The order book spells them in CamelCase ("Limit", "StopMarket"); compared case-insensitively.
OUR_ORDER_TYPES: Final[dict[str, str]] = {xts.upper(): ours for ours, xts in ORDER_TYPES.items()}
VALIDITIES: Final[frozenset[str]] = frozenset({"DAY", "IOC"})
SIDES: Final[frozenset[str]] = frozenset({"BUY", "SELL"})

# XTS's order statuses in the OMS vocabulary. The transitional ones (a request still on its way
# through XTS's OMS or the exchange) keep the order as it was: None.
STATUSES: Final[dict[str, str | None]] = {
    "NEW": "OPEN",
    "OPEN": "OPEN",
    "PARTIALLYFILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELLED": "CANCELLED",
    "REJECTED": "REJECTED",
    "TRIGGERPENDING": "TRIGGER_PENDING",
    "PENDINGNEW": None,
    "PENDINGREPLACE": None,
    "PENDINGCANCEL": None,
    "REPLACED": None,
}


def status_key(xts_status: str) -> str:
    """XTS's status as a key of STATUSES: upper case, without spaces ("Trigger Pending" -> "TRIGGERPENDING")."""
    return xts_status.replace(" ", "").replace("_", "").upper()


def status_of(xts_status: str, *, current: str) -> str:
    """Return XTS's status in the OMS vocabulary; a transitional or unknown one keeps ``current``."""
    mapped = STATUSES.get(status_key(xts_status))
    return current if mapped is None else mapped


def order_type_of(xts_type: str) -> str | None:
    """Our order type for XTS's (either spelling), or None for one we do not trade."""
    return OUR_ORDER_TYPES.get(xts_type.replace(" ", "").upper())


# --- the family's instrument token --------------------------------------------------------------
# An exchange instrument id is unique only within its segment (BSE's and NSE's numbers overlap), so
# the family's token is "<segment number>_<exchange instrument id>": the form XTS's own partial
# market-data messages name instruments by ("t":"1_2885").


def token_of(segment: str | int, instrument_id: int | str) -> str:
    """The family's token for an instrument of XTS ``segment`` (its name or number). Raises ValueError
    for an unknown segment or an instrument id that is not a positive number."""
    number = segment if isinstance(segment, int) else SEGMENT_NUMBERS.get(segment)
    if number not in SEGMENT_NAMES:
        raise ValueError(f"unknown XTS exchange segment {segment!r}")
    text = str(instrument_id)
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) <= 0:
        raise ValueError(f"XTS exchange instrument id {text[:20]!r} is not a positive number")
    return f"{number}_{int(text)}"


def parse_token(token: str) -> tuple[str, int]:
    """(XTS segment name, exchange instrument id) of a family token. Raises ValueError for one not in
    the form ``token_of`` writes."""
    number, sep, instrument = token.partition("_")
    if not sep or not number.isdigit() or not instrument.isascii() or not instrument.isdigit():
        raise ValueError(f"{token[:40]!r} is not an XTS token (segment_instrument)")
    segment = SEGMENT_NAMES.get(int(number))
    if segment is None or len(instrument) > 12 or int(instrument) <= 0:
        raise ValueError(f"{token[:40]!r} is not an XTS token (segment_instrument)")
    return segment, int(instrument)
