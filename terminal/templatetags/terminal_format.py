"""Number formatting for the dense tables of the terminal.

``floatformat`` handles locales and arbitrary precision and is the slowest part of rendering a
200-row order book; prices and P&L here are Decimals shown with two places (more when the tick needs
them is not a concern of these columns), so a plain format does (terminal.lib.money).
"""

from django import template

from terminal.lib.money import money_text

register = template.Library()


@register.filter(is_safe=True)
def money(value) -> str:
    """Return ``value`` with two decimals (as ``floatformat:2`` did, without grouping); empty for
    None; the value unchanged when it is not a number."""
    return money_text(value)
