"""Money shown in the terminal's dense tables: two decimal places, no grouping."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENTS = Decimal("0.01")


def money_text(value) -> str:
    """Return ``value`` with two decimals (as ``floatformat:2`` did, without grouping); empty for None
    or ""; the value as text, unchanged, when it is not a number."""
    if value is None or value == "":
        return ""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return str(number.quantize(CENTS, rounding=ROUND_HALF_UP))
    except (ArithmeticError, TypeError, ValueError):
        return str(value)
