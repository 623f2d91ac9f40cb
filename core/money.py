"""Money and prices as the terminal shows them to people.

- ``format_inr``: rupees with two decimals and Indian digit grouping, the last three digits then
  groups of two (``₹16,99,00,00,00,000.00``); a negative amount reads ``-₹1,234.50`` (an ASCII
  hyphen-minus, as ``Intl.NumberFormat('en-IN', {style: 'currency', currency: 'INR'})`` writes it in
  the browser, so server-rendered and script-rendered cells read the same).
- ``format_price``: a price with its instrument's tick precision (``price_places``: at least two
  places, more when the tick needs them: 0.05 and 1 show 2, 0.0025 shows 4), grouped the same way,
  without the rupee sign (prices sit in price columns; amounts carry the sign).
- ``price_text`` and ``money_text``: the same precision without grouping, for form inputs and
  other text a program may read back.

Only the human text changes: JSON, CSV/XLSX exports, error ``extra`` and data-* attributes keep plain
decimals. These run for every cell of a 200-row order book, so they are plain string work: no
locale module, no ``floatformat``. Each returns "" for None or "" and the value as text, unchanged,
when it is not a finite number.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

CENTS = Decimal("0.01")
RUPEE = "₹"
_EXPONENTS = {places: Decimal(1).scaleb(-places) for places in range(9)}


def _decimal(value) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        return None
    else:
        try:
            number = Decimal(str(value).strip())
        except (ArithmeticError, TypeError, ValueError):
            return None
    return number if number.is_finite() else None


def _quantize(number: Decimal, places: int) -> Decimal:
    exponent = _EXPONENTS.get(places) or Decimal(1).scaleb(-places)
    try:
        rounded = number.quantize(exponent, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the default context's 28: give it enough
        context = Context(prec=max(number.adjusted(), 0) + places + 2)
        rounded = number.quantize(exponent, rounding=ROUND_HALF_UP, context=context)
    return rounded if rounded else rounded.copy_abs()  # no "-0.00"


def group_indian(digits: str) -> str:
    """Return a run of digits grouped the Indian way: ``1234567`` -> ``12,34,567``."""
    size = len(digits)
    if size <= 3:
        return digits
    if size <= 5:  # most prices: one group before the last three digits
        return digits[:-3] + "," + digits[-3:]
    head = digits[:-3]
    start = len(head) % 2 or 2
    grouped = head[:start]
    for i in range(start, len(head), 2):
        grouped += "," + head[i : i + 2]
    return grouped + "," + digits[-3:]


def _grouped(number: Decimal, places: int, prefix: str) -> str:
    text = f"{_quantize(number, places):f}"
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    point = text.find(".")
    if point < 0:
        return sign + prefix + group_indian(text)
    return sign + prefix + group_indian(text[:point]) + text[point:]


def _not_a_number(value) -> str:
    return "" if value is None or value == "" else str(value)


def price_places(tick) -> int | None:
    """Return the decimal places a price on ``tick`` shows: at least 2, more when the tick has more
    (0.05 -> 2, 1 -> 2, 0.0025 -> 4); None when ``tick`` is not a positive number."""
    tick = _decimal(tick)
    if tick is None or tick <= 0:
        return None
    return max(2, -tick.normalize().as_tuple().exponent)


_tick_places: dict[Decimal, int | None] = {}  # a market has a handful of tick sizes; every row looks its own up


def _own_places(number: Decimal) -> int:
    """The decimal places ``number`` (finite) is written with; negative for a whole number with an exponent."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # only NaN and the infinities have a letter here, and _decimal refuses them
    return -exponent


def _places_of(number: Decimal, tick) -> int:
    if isinstance(tick, Decimal):
        places = _tick_places.get(tick, -1)
        if places == -1:
            places = price_places(tick)
            if len(_tick_places) < 64:
                _tick_places[tick] = places
    else:
        places = None if tick is None else price_places(tick)
    if places is None:  # no tick known: the value's own places, at least two
        places = max(2, _own_places(number))
    return places


def format_inr(amount) -> str:
    """Return ``amount`` in rupees: ``₹1,23,456.70``, ``-₹1,234.50``, ``₹0.00``."""
    number = _decimal(amount)
    if number is None:
        return _not_a_number(amount)
    return _grouped(number, 2, RUPEE)


def format_price(value, tick=None) -> str:
    """Return ``value`` with the places of ``tick`` (``price_places``) and Indian grouping:
    ``22,450.05``; without a tick, with the value's own places (at least two)."""
    number = _decimal(value)
    if number is None:
        return _not_a_number(value)
    return _grouped(number, _places_of(number, tick), "")


def format_number(value) -> str:
    """Return a count (volume, open interest, a limit) grouped the Indian way, its own places kept."""
    number = _decimal(value)
    if number is None:
        return _not_a_number(value)
    return _grouped(number, max(0, _own_places(number)), "")


def price_text(value, tick=None) -> str:
    """Return ``value`` with the places of ``tick`` and no grouping: what a price input holds."""
    number = _decimal(value)
    if number is None:
        return _not_a_number(value)
    return f"{_quantize(number, _places_of(number, tick)):f}"


def money_text(value) -> str:
    """Return ``value`` with two decimals (as ``floatformat:2`` did, without grouping); empty for None
    or ""; the value as text, unchanged, when it is not a number."""
    number = _decimal(value)
    if number is None:
        return _not_a_number(value)
    return f"{_quantize(number, 2):f}"
