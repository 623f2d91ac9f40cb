"""Upstox's names for our vocabulary, both ways: exchanges (the segment of an instrument key, e.g.
``NSE_EQ|INE002A01018``), products, order types, validities, sides and order statuses.

Sources: upstox-python ``models/place_order_v3_request.py`` (products I, D, MTF; validities DAY, IOC;
order types MARKET, LIMIT, SL, SL-M; transaction types BUY, SELL), the instruments page (segments)
and the order-book and webhook samples (lowercase statuses)."""

from __future__ import annotations

# Our exchange -> Upstox's segment (the part of an instrument key before "|").
SEGMENTS: dict[str, str] = {
    "NSE": "NSE_EQ",
    "BSE": "BSE_EQ",
    "NFO": "NSE_FO",
    "BFO": "BSE_FO",
    "CDS": "NCD_FO",
    "BCD": "BCD_FO",
    "MCX": "MCX_FO",
}
# Upstox's segment -> our exchange; the index segments are their exchange's (indices trade nowhere).
EXCHANGES: dict[str, str] = {
    **{segment: ours for ours, segment in SEGMENTS.items()},
    "NSE_INDEX": "NSE",
    "BSE_INDEX": "BSE",
    "MCX_INDEX": "MCX",
}
EQUITY_SEGMENTS = frozenset({"NSE_EQ", "BSE_EQ"})

# Our product -> Upstox's: I intraday, D delivery (cash) and carry-forward (derivatives).
PRODUCTS: dict[str, str] = {"CNC": "D", "MIS": "I", "NRML": "D"}
ORDER_TYPES = frozenset({"MARKET", "LIMIT", "SL", "SL-M"})  # the same words both ways
VALIDITIES = frozenset({"DAY", "IOC"})
SIDES = frozenset({"BUY", "SELL"})

# Upstox's order statuses (lowercase) in the OMS vocabulary. A status of a request still on its way
# through Upstox's OMS or the exchange leaves the order as it was: None.
STATUSES: dict[str, str | None] = {
    "open": "OPEN",
    "trigger pending": "TRIGGER_PENDING",
    "complete": "FILLED",
    "cancelled": "CANCELLED",
    "cancelled after market order": "CANCELLED",
    "rejected": "REJECTED",
    "put order req received": None,
    "validation pending": None,
    "open pending": None,
    "modify validation pending": None,
    "modify pending": None,
    "modified": None,
    "not modified": None,
    "cancel pending": None,
    "not cancelled": None,
    "after market order req received": None,
    "modify after market order req received": None,
    "cancel after market order req received": None,
}


def status_of(upstox_status: str, *, current: str) -> str:
    """Upstox's status in the OMS vocabulary; a transitional or unknown one keeps ``current``."""
    mapped = STATUSES.get(upstox_status.strip().lower())
    return current if mapped is None else mapped


def product_of(upstox_product: str, segment: str) -> str:
    """Our product for Upstox's: I (and the intraday CO and OCO) -> MIS; D (and MTF, delivery bought on
    margin) -> CNC in the cash segments, NRML in the derivatives ones. Raises ValueError for another."""
    if upstox_product in {"I", "CO", "OCO"}:
        return "MIS"
    if upstox_product in {"D", "MTF"}:
        return "CNC" if segment in EQUITY_SEGMENTS else "NRML"
    raise ValueError(f"Upstox product {upstox_product!r} is not one we trade")


def segment_of(instrument_key: str) -> str:
    """The segment of an instrument key (``NSE_EQ|INE002A01018`` -> ``NSE_EQ``); ValueError if malformed."""
    segment, bar, rest = instrument_key.partition("|")
    if not bar or not rest or segment not in EXCHANGES:
        raise ValueError(f"{instrument_key[:40]!r} is not an Upstox instrument key")
    return segment
