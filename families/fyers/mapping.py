"""Fyers API v3's vocabulary both ways: order types, sides, products, validities, statuses, and the
exchange and segment codes of its symbols and symbol master.

Sources: the fyers-apiv3 SDK's ``place_order`` docstring (fyersModel.py: type 1 limit, 2 market,
3 stop (SL-M), 4 stoplimit (SL); side 1 / -1; productType CNC, INTRADAY, MARGIN, CO, BO; validity
DAY / IOC) and Fyers' order-status table (1 cancelled, 2 traded, 3 for future use, 4 transit,
5 rejected, 6 pending, 7 expired); exchange 10 NSE, 11 MCX, 12 BSE and segment 10 capital market,
11 equity derivatives, 12 currency, 20 commodity (the fytoken's first four digits).
"""

from __future__ import annotations

import re

# Our order types, products, sides and validities as Fyers spells them, and back.
ORDER_TYPES: dict[str, int] = {"LIMIT": 1, "MARKET": 2, "SL-M": 3, "SL": 4}
ORDER_TYPE_NAMES: dict[int, str] = {code: name for name, code in ORDER_TYPES.items()}
SIDES: dict[str, int] = {"BUY": 1, "SELL": -1}
SIDE_NAMES: dict[int, str] = {code: name for name, code in SIDES.items()}
PRODUCTS: dict[str, str] = {"CNC": "CNC", "MIS": "INTRADAY", "NRML": "MARGIN"}
# Fyers' own intraday products (cover and bracket orders) are intraday positions in our terms.
PRODUCT_NAMES: dict[str, str] = {
    "CNC": "CNC",
    "INTRADAY": "MIS",
    "MARGIN": "NRML",
    "CO": "MIS",
    "BO": "MIS",
    "MTF": "CNC",
}
VALIDITIES = frozenset({"DAY", "IOC"})
PRICED = frozenset({"LIMIT", "SL"})  # order types that carry a limit price
STOPPED = frozenset({"SL", "SL-M"})  # order types that carry a trigger (Fyers' stopPrice)

# Fyers' order statuses in the OMS vocabulary. Transit (4) and the reserved 3 are on their way
# through Fyers' OMS: they keep the order's current status (None). Pending (6) is working at the
# exchange; an expired order (7, an IOC's or a day order's remainder) is over, as a cancellation.
STATUSES: dict[int, str | None] = {
    1: "CANCELLED",
    2: "FILLED",
    3: None,
    4: None,
    5: "REJECTED",
    6: "OPEN",
    7: "CANCELLED",
}


def status_of(code: object, *, current: str) -> str:
    """Return Fyers' status code in the OMS vocabulary; a transitional or unknown one keeps ``current``."""
    if isinstance(code, bool) or not isinstance(code, int):
        return current
    mapped = STATUSES.get(code)
    return current if mapped is None else mapped


# (Fyers exchange code, segment code) -> our exchange, and the symbol master file listing it.
SEGMENTS: dict[tuple[int, int], str] = {
    (10, 10): "NSE",
    (10, 11): "NFO",
    (10, 12): "CDS",
    (12, 10): "BSE",
    (12, 11): "BFO",
    (12, 12): "BCD",
    (11, 20): "MCX",
}
# Our exchange -> the prefix of Fyers' symbol ticker ("NSE:SBIN-EQ").
TICKER_PREFIX: dict[str, str] = {
    "NSE": "NSE",
    "NFO": "NSE",
    "CDS": "NSE",
    "BSE": "BSE",
    "BFO": "BSE",
    "BCD": "BSE",
    "MCX": "MCX",
}
# Fyers' segment names, the mapping's ``exchange`` column (the master file's stem).
SEGMENT_NAMES: dict[str, str] = {
    "NSE": "NSE_CM",
    "NFO": "NSE_FO",
    "CDS": "NSE_CD",
    "BSE": "BSE_CM",
    "BFO": "BSE_FO",
    "BCD": "BSE_CD",
    "MCX": "MCX_COM",
}
# The symbol master's files (https://public.fyers.in/sym_details/<name>.csv) for the segments we trade.
MASTER_FILES = ("NSE_CM", "NSE_FO", "NSE_CD", "BSE_CM", "BSE_FO", "MCX_COM")

# The HSM market feed names a segment by the fytoken's first four digits (the SDK's map.json
# "exch_seg_dict"). The BSE entries are not in the SDK's published map (unverified).
HSM_SEGMENTS: dict[str, str] = {
    "1010": "nse_cm",
    "1011": "nse_fo",
    "1012": "cde_fo",
    "1120": "mcx_fo",
    "1210": "bse_cm",
    "1211": "bse_fo",
}

_FYTOKEN = re.compile(r"[0-9]{11,20}")
_TAG_PREFIX = re.compile(r"[0-9]{1,3}:")
UNTAGGED = "Untagged"


def is_fytoken(value: object) -> bool:
    """Whether ``value`` is a fytoken: exchange (2) + segment (2) + expiry (6) + the exchange's token."""
    return isinstance(value, str) and _FYTOKEN.fullmatch(value) is not None


def tag_of(value: object) -> str:
    """Our tag from an order book's ``orderTag``: Fyers answers it with a source prefix ("1:ABC",
    "2:Untagged" for an order placed without one); "" for none."""
    if not isinstance(value, str):
        return ""
    prefix = _TAG_PREFIX.match(value)
    tag = value[prefix.end() :] if prefix else value
    return "" if tag == UNTAGGED else tag.strip()
