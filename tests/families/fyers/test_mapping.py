"""Fyers' vocabulary both ways: order types, sides, products, statuses, segments and tags."""

from __future__ import annotations

import pytest

from families.fyers import mapping


def test_order_types_sides_and_products_map_both_ways():
    assert mapping.ORDER_TYPES == {"LIMIT": 1, "MARKET": 2, "SL-M": 3, "SL": 4}
    assert {mapping.ORDER_TYPE_NAMES[code]: code for code in mapping.ORDER_TYPE_NAMES} == mapping.ORDER_TYPES
    assert mapping.SIDES == {"BUY": 1, "SELL": -1} and mapping.SIDE_NAMES == {1: "BUY", -1: "SELL"}
    for ours, theirs in mapping.PRODUCTS.items():
        assert mapping.PRODUCT_NAMES[theirs] == ours
    assert mapping.PRODUCT_NAMES["CO"] == mapping.PRODUCT_NAMES["BO"] == "MIS"


@pytest.mark.parametrize(
    ("code", "current", "expected"),
    [
        (1, "OPEN", "CANCELLED"),
        (2, "OPEN", "FILLED"),
        (5, "OPEN", "REJECTED"),
        (6, "TRIGGER_PENDING", "OPEN"),
        (7, "OPEN", "CANCELLED"),
        (4, "TRIGGER_PENDING", "TRIGGER_PENDING"),  # transit keeps the current status
        (3, "OPEN", "OPEN"),
        (99, "OPEN", "OPEN"),
        ("2", "OPEN", "OPEN"),  # a status is a number
        (True, "OPEN", "OPEN"),
        (None, "OPEN", "OPEN"),
    ],
)
def test_statuses_map_to_ours_and_transitional_ones_keep_the_current(code, current, expected):
    assert mapping.status_of(code, current=current) == expected


def test_every_segment_has_a_ticker_prefix_and_a_master_name():
    for exchange in mapping.SEGMENTS.values():
        assert exchange in mapping.TICKER_PREFIX and exchange in mapping.SEGMENT_NAMES


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("1:a1b2c3d4e5f6a7b8c9d0", "a1b2c3d4e5f6a7b8c9d0"),
        ("2:Untagged", ""),
        ("breakout", "breakout"),
        ("", ""),
        (None, ""),
        (12, ""),
        ("12:T0001", "T0001"),
    ],
)
def test_the_order_books_tag_loses_its_source_prefix(raw, tag):
    assert mapping.tag_of(raw) == tag


def test_fytokens_are_digit_strings():
    assert mapping.is_fytoken("10100000002885")
    assert not mapping.is_fytoken("1010ABC") and not mapping.is_fytoken(10100000002885) and not mapping.is_fytoken("")
