"""Our vocabulary and NorenOMS's, both ways: exchanges, products, order types, validities, sides and
order statuses (NorenApi.py's ``ProductType``, ``PriceType`` and ``BuyorSell``; the README's
"Order States and Report Types"). A value outside these tables is refused before sending
(``ValueError``) or, coming back from the broker, read as unknown (None)."""

from __future__ import annotations

# Our exchange codes -> Noren's ``exch`` (the same spelling; Noren has no BSE currency segment, BCD).
EXCHANGES: dict[str, str] = {"NSE": "NSE", "BSE": "BSE", "NFO": "NFO", "BFO": "BFO", "CDS": "CDS", "MCX": "MCX"}
EXCHANGES_BACK = {noren: ours for ours, noren in EXCHANGES.items()}

# ``prd``: C delivery (CNC), I intraday (MIS), M normal/carry-forward (NRML); B bracket and H cover
# orders are not offered.
PRODUCTS: dict[str, str] = {"CNC": "C", "MIS": "I", "NRML": "M"}
PRODUCTS_BACK = {noren: ours for ours, noren in PRODUCTS.items()}

# ``prctyp``
ORDER_TYPES: dict[str, str] = {"MARKET": "MKT", "LIMIT": "LMT", "SL": "SL-LMT", "SL-M": "SL-MKT"}
ORDER_TYPES_BACK = {noren: ours for ours, noren in ORDER_TYPES.items()}

# ``ret`` (Noren's EOS, end of session, has no counterpart of ours)
VALIDITIES: dict[str, str] = {"DAY": "DAY", "IOC": "IOC"}
VALIDITIES_BACK = {noren: ours for ours, noren in VALIDITIES.items()}

# ``trantype``
SIDES: dict[str, str] = {"BUY": "B", "SELL": "S"}
SIDES_BACK = {noren: ours for ours, noren in SIDES.items()}

# ``status`` in the OMS vocabulary. PENDING (a request on its way through the OMS) and
# INVALID_STATUS_TYPE leave the order as it was: None. An OPEN order with some quantity filled is
# PARTIALLY_FILLED (``status_of``).
STATUSES: dict[str, str | None] = {
    "OPEN": "OPEN",
    "TRIGGER_PENDING": "TRIGGER_PENDING",
    "COMPLETE": "FILLED",
    "CANCELED": "CANCELLED",
    "REJECTED": "REJECTED",
    "PENDING": None,
    "INVALID_STATUS_TYPE": None,
}
# An order update's ``reporttype`` where its ``status`` is not one of the above: the event says the outcome.
REPORT_TYPES: dict[str, str | None] = {
    "NEW": "OPEN",
    "REPLACED": "OPEN",
    "CANCELED": "CANCELLED",
    "REJECTED": "REJECTED",
    "FILL": None,  # the fill's quantities decide (``status_of``)
    "NEWACK": None,
    "MODACK": None,
    "CANACK": None,
    "PENDINGNEW": None,
    "PENDINGREPLACE": None,
    "PENDINGCANCEL": None,
    "REPLACEREJECTED": None,  # the order stands as it was
    "CANCELREJECTED": None,
    "INVALID_REPORT_TYPE": None,
}


def to_noren(table: dict[str, str], value: str, what: str) -> str:
    """Noren's code for our ``value``; raises ValueError for one the family does not offer."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"NorenOMS has no {what} {value!r}") from None


def status_of(status: str, *, current: str, filled: int = 0, quantity: int = 0, report: str = "") -> str:
    """Noren's ``status`` (or, failing that, an update's ``reporttype``) in the OMS vocabulary; a
    transitional one keeps ``current``. OPEN with part of the quantity filled is PARTIALLY_FILLED;
    an order filled in whole is FILLED whatever the status says."""
    key = (status or "").strip().upper()
    mapped = STATUSES.get(key)
    if mapped is None and key not in STATUSES:
        mapped = REPORT_TYPES.get((report or "").strip().upper())
    if quantity > 0 and filled >= quantity and mapped not in {"CANCELLED", "REJECTED"}:
        return "FILLED"
    if mapped is None:
        mapped = current
    if mapped in {"OPEN", "TRIGGER_PENDING"} and 0 < filled < quantity:
        return "PARTIALLY_FILLED"
    return mapped
