"""DhanHQ v2's vocabulary and ours, both ways (https://dhanhq.co/docs/v2/annexure, DhanHQ-py).

Dhan names an instrument by its exchange segment (``NSE_EQ``, ``NSE_FNO``...) and its security id
(the exchange's own token). Two segments may use the same security id, so this family's token in the
broker mapping (``BrokerInstrument.token``) is the pair ``"<segment>:<security id>"``: ``NSE_EQ:2885``.
"""

from __future__ import annotations

from brokers.adapters.base import BrokerRejected

FAMILY = "dhan"

# Our exchange -> Dhan's exchange segment, and back.
SEGMENTS: dict[str, str] = {
    "NSE": "NSE_EQ",
    "NFO": "NSE_FNO",
    "CDS": "NSE_CURRENCY",
    "BSE": "BSE_EQ",
    "BFO": "BSE_FNO",
    "BCD": "BSE_CURRENCY",
    "MCX": "MCX_COMM",
}
EXCHANGES: dict[str, str] = {segment: exchange for exchange, segment in SEGMENTS.items()}
INDEX_SEGMENT = "IDX_I"  # indices: quoted, never traded

# The market feed's numeric segment (the binary header's byte 3) and Dhan's segment name
# (DhanHQ-py marketfeed.py; 6 is unused).
FEED_SEGMENTS: dict[int, str] = {
    0: "IDX_I",
    1: "NSE_EQ",
    2: "NSE_FNO",
    3: "NSE_CURRENCY",
    4: "BSE_EQ",
    5: "MCX_COMM",
    7: "BSE_CURRENCY",
    8: "BSE_FNO",
}
FEED_SEGMENT_CODES: dict[str, int] = {name: code for code, name in FEED_SEGMENTS.items()}

# Our product -> Dhan's productType, and back (MTF, CO and BO are Dhan's own and not sent by us).
PRODUCTS: dict[str, str] = {"CNC": "CNC", "MIS": "INTRADAY", "NRML": "MARGIN"}
PRODUCTS_BACK: dict[str, str] = {dhan: ours for ours, dhan in PRODUCTS.items()}

ORDER_TYPES: dict[str, str] = {"MARKET": "MARKET", "LIMIT": "LIMIT", "SL": "STOP_LOSS", "SL-M": "STOP_LOSS_MARKET"}
ORDER_TYPES_BACK: dict[str, str] = {dhan: ours for ours, dhan in ORDER_TYPES.items()}

VALIDITIES: dict[str, str] = {"DAY": "DAY", "IOC": "IOC"}
SIDES: dict[str, str] = {"BUY": "BUY", "SELL": "SELL"}

# Dhan's order statuses in the OMS vocabulary. TRANSIT (on its way to the exchange) and the super
# order's TRIGGERED and CLOSED leave the order as it is: they map to None. PENDING is resting: OPEN,
# or TRIGGER_PENDING for a stop order (``status_of``). EXPIRED: the exchange ended the order's day.
STATUSES: dict[str, str | None] = {
    "TRANSIT": None,
    "PENDING": "OPEN",
    "PART_TRADED": "PARTIALLY_FILLED",
    "TRADED": "FILLED",
    "CANCELLED": "CANCELLED",
    "REJECTED": "REJECTED",
    "EXPIRED": "CANCELLED",
    "TRIGGERED": None,
    "CLOSED": None,
}
STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_MARKET"})


def status_of(dhan_status: str, *, current: str, order_type: str = "") -> str:
    """Dhan's status (any case; "Part Traded" and "PART_TRADED" alike) in the OMS vocabulary; a
    transitional or unknown one keeps ``current``. A resting stop order is TRIGGER_PENDING."""
    key = dhan_status.strip().upper().replace(" ", "_")
    mapped = STATUSES.get(key)
    if mapped is None:
        return current
    if mapped == "OPEN" and order_type.upper() in STOP_TYPES | {"SL", "SLM", "SL-M"}:
        return "TRIGGER_PENDING"
    return mapped


def token_of(segment: str, security_id: str | int) -> str:
    """This family's token for a security: ``"NSE_EQ:2885"``."""
    return f"{segment}:{security_id}"


def split_token(token: str) -> tuple[str, str]:
    """(segment, security id) of this family's token. Raises ValueError for one not of that shape."""
    segment, sep, security_id = token.partition(":")
    if not sep or segment not in FEED_SEGMENT_CODES or not security_id.isascii() or not security_id.isdigit():
        raise ValueError(f"{token[:40]!r} is not a Dhan token (<segment>:<security id>)")
    return segment, security_id


def segment_for(exchange: str, token: str) -> tuple[str, str]:
    """(segment, security id) for a mapped instrument: from the token, whose segment wins over the
    mapping's exchange. Raises BrokerRejected ``broker_instrument_not_mapped`` for a token that names
    no Dhan security (nothing sent)."""
    try:
        return split_token(token)
    except ValueError:
        pass
    segment = SEGMENTS.get(exchange, exchange if exchange in EXCHANGES else "")
    if segment and token.isascii() and token.isdigit():
        return segment, token
    raise BrokerRejected(
        f"The Dhan mapping's token {token[:40]!r} ({exchange[:16]}) names no Dhan security: nothing was sent.",
        code="broker_instrument_not_mapped",
        extra={"token": token[:40]},
    )


def refuse_unsupported(what: str, value: str) -> BrokerRejected:
    """The refusal of a value Dhan has no name for (nothing sent)."""
    return BrokerRejected(
        f"Dhan has no {what} {value[:20]!r}: nothing was sent.",
        code="broker_unsupported",
        extra={what: value[:20]},
    )
