"""Money in rupees with Indian digit grouping, prices with their tick's precision (core.money)."""

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from django.template import Context, Template
from hypothesis import given
from hypothesis import strategies as st

from core.money import format_inr, format_number, format_price, group_indian, price_places, price_text

# Optional sign, the rupee, 1-2 digit groups before the last three digits, two decimals.
INDIAN_INR = re.compile(r"^-?₹(\d{1,2}(,\d{2})*,\d{3}|\d{1,3})\.\d{2}$")

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**40), max_value=10**40, places=6)


def _reference_grouping(whole: int) -> str:
    """Indian grouping computed another way: peel three digits, then twos, from the right."""
    digits, groups = str(whole), []
    groups.append(digits[-3:])
    digits = digits[:-3]
    while digits:
        groups.append(digits[-2:])
        digits = digits[:-2]
    return ",".join(reversed(groups))


@given(finite_decimals)
def test_removing_the_rupee_and_commas_gives_the_amount_rounded_to_paise(amount):
    shown = format_inr(amount)
    assert INDIAN_INR.match(shown), shown
    with localcontext(prec=100):  # the reference rounding, exact at any size
        expected = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(shown.replace("₹", "").replace(",", "")) == expected


@given(st.integers(min_value=0, max_value=10**30))
def test_the_grouping_matches_a_reference_computation(whole):
    assert format_inr(whole) == f"₹{_reference_grouping(whole)}.00"
    assert group_indian(str(whole)) == _reference_grouping(whole)


@given(finite_decimals, st.sampled_from(["0.05", "0.0025", "1", "0.10", "0.005"]))
def test_a_price_shows_its_ticks_places_and_reads_back_as_the_rounded_price(value, tick):
    shown = format_price(value, Decimal(tick))
    places = {"0.05": 2, "0.0025": 4, "1": 2, "0.10": 2, "0.005": 3}[tick]
    assert re.match(rf"^-?(\d{{1,2}}(,\d{{2}})*,\d{{3}}|\d{{1,3}})\.\d{{{places}}}$", shown), shown
    exponent = Decimal(1).scaleb(-places)
    with localcontext(prec=100):
        assert Decimal(shown.replace(",", "")) == value.quantize(exponent, rounding=ROUND_HALF_UP)
    assert price_text(value, Decimal(tick)) == shown.replace(",", "")


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (0, "₹0.00"),
        (Decimal("0.00"), "₹0.00"),
        (Decimal("-0.001"), "₹0.00"),  # rounds to zero: no "-₹0.00"
        (Decimal("-1234.5"), "-₹1,234.50"),
        (Decimal("-0.50"), "-₹0.50"),
        (999, "₹999.00"),
        (1000, "₹1,000.00"),
        (Decimal("99999.995"), "₹1,00,000.00"),
        (100000, "₹1,00,000.00"),
        (1234567, "₹12,34,567.00"),
        (10**12, "₹10,00,00,00,00,000.00"),
        (Decimal("1699000000000.0000"), "₹16,99,00,00,00,000.00"),
        (10**40, "₹10" + ",00" * 18 + ",000.00"),
        (Decimal("1E+3"), "₹1,000.00"),
        (2.5, "₹2.50"),
        ("1234.5", "₹1,234.50"),
        (None, ""),
        ("", ""),
        ("n/a", "n/a"),
        (Decimal("NaN"), "NaN"),
        (float("inf"), "inf"),
        (True, "True"),
    ],
)
def test_an_amount_reads_in_rupees_with_indian_grouping(amount, shown):
    assert format_inr(amount) == shown


@pytest.mark.parametrize(
    ("tick", "places"),
    [(Decimal("0.05"), 2), (Decimal("0.0025"), 4), (Decimal("1"), 2), (Decimal("0.10"), 2), ("0.005", 3)],
)
def test_a_price_shows_at_least_two_places_and_more_when_the_tick_needs_them(tick, places):
    assert price_places(tick) == places


@pytest.mark.parametrize(
    ("value", "tick", "shown"),
    [
        (Decimal("22450.05"), Decimal("0.05"), "22,450.05"),
        (Decimal("83.1225"), Decimal("0.0025"), "83.1225"),
        (Decimal("83.12"), Decimal("0.0025"), "83.1200"),
        (Decimal("1250"), Decimal("1"), "1,250.00"),
        (Decimal("-2.5"), None, "-2.50"),  # no tick: the value's own places, at least two
        (Decimal("83.1225"), None, "83.1225"),
        (Decimal("999.955"), Decimal("0.05"), "999.96"),
        (Decimal("100"), "not a tick", "100.00"),
        (Decimal("100"), Decimal("0"), "100.00"),
        (None, Decimal("0.05"), ""),
        ("MKT", Decimal("0.05"), "MKT"),
    ],
)
def test_a_price_reads_with_its_ticks_precision_and_indian_grouping(value, tick, shown):
    assert format_price(value, tick) == shown


def test_a_count_is_grouped_and_keeps_its_own_places():
    assert format_number(12345678) == "1,23,45,678"
    assert format_number(Decimal("5000000.00")) == "50,00,000.00"
    assert format_number(Decimal("2.5")) == "2.5" and format_number(None) == "" and format_number("x") == "x"


def test_the_template_filters_format_amounts_prices_and_counts_and_escape_what_is_not_a_number():
    template = Template(
        "{% load terminal_format %}{{ a|inr }} {{ p|price:tick }} {{ p|price }} {{ n|indian }} {{ bad|inr }}"
    )
    html = template.render(
        Context({"a": Decimal("-1234.5"), "p": Decimal("83.1225"), "tick": Decimal("0.05"), "n": 150000, "bad": "<b>"})
    )
    assert html == "-₹1,234.50 83.12 83.1225 1,50,000 &lt;b&gt;"
