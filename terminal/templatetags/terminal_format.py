"""Number formatting for the dense tables of the terminal.

``floatformat`` handles locales and arbitrary precision and is the slowest part of rendering a
200-row order book; prices and P&L here are Decimals shown with two places (more when the tick needs
them is not a concern of these columns), so a plain format does.
"""

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()
CENTS = Decimal("0.01")


@register.filter(is_safe=True)
def money(value) -> str:
    """Return ``value`` with two decimals (as ``floatformat:2`` did, without grouping); empty for
    None; the value unchanged when it is not a number."""
    if value is None or value == "":
        return ""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return str(number.quantize(CENTS, rounding=ROUND_HALF_UP))
    except (ArithmeticError, TypeError, ValueError):
        return str(value)
