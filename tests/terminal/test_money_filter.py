from decimal import Decimal

import pytest

from terminal.templatetags.terminal_format import money


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1000.0000"), "1000.00"),
        (Decimal("-12.345"), "-12.35"),
        (Decimal("0.005"), "0.01"),
        (0, "0.00"),
        ("2.5", "2.50"),
        (None, ""),
        ("n/a", "n/a"),
    ],
)
def test_money_shows_two_places_like_floatformat(value, shown):
    assert money(value) == shown
