"""Number formatting for the terminal's pages (core.money).

``floatformat`` handles locales and arbitrary precision and is the slowest part of rendering a
200-row order book; these filters are plain string work over Decimals:
- ``inr``: an amount in rupees with Indian grouping (``₹1,23,456.70``, ``-₹1,234.50``);
- ``price``: a price with its instrument's tick precision and Indian grouping
  (``{{ trade.price|price:trade.instrument.tick_size }}``);
- ``indian``: a count grouped the Indian way (volume, open interest, limits);
- ``money``: two decimals, no grouping (values a program may read back).
"""

from django import template

from core.money import format_inr, format_number, format_price, money_text

register = template.Library()


@register.filter(is_safe=True)
def money(value) -> str:
    """Return ``value`` with two decimals (as ``floatformat:2`` did, without grouping); empty for
    None; the value unchanged when it is not a number."""
    return money_text(value)


@register.filter(is_safe=True)
def inr(value) -> str:
    """Return ``value`` as rupees with Indian grouping; empty for None; unchanged when not a number."""
    return format_inr(value)


@register.filter(is_safe=True)
def price(value, tick=None) -> str:
    """Return ``value`` with the places of ``tick`` and Indian grouping; empty for None; unchanged when
    not a number."""
    return format_price(value, tick)


@register.filter(is_safe=True)
def indian(value) -> str:
    """Return a count with Indian grouping, its own places kept; empty for None; unchanged when not a
    number."""
    return format_number(value)
