"""XTS's vocabulary both ways: segments, order types, statuses (transitional ones keep the order as it
was) and the family's token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import ALL_EXCHANGES
from families.xts import mapping
from families.xts.adapter import XtsAdapter


def test_every_segment_maps_to_one_of_our_exchanges_and_back():
    for exchange, segment in mapping.SEGMENTS.items():
        assert exchange in ALL_EXCHANGES
        assert mapping.EXCHANGES[segment] == exchange
        assert mapping.SEGMENT_NAMES[mapping.SEGMENT_NUMBERS[segment]] == segment


def test_the_documented_segment_numbers():
    assert mapping.SEGMENT_NUMBERS == {"NSECM": 1, "NSEFO": 2, "NSECD": 3, "BSECM": 11, "BSEFO": 12, "MCXFO": 51}


@pytest.mark.parametrize(
    ("ours", "xts", "book"),
    [("MARKET", "MARKET", "Market"), ("LIMIT", "LIMIT", "Limit"), ("SL", "STOPLIMIT", "StopLimit"),
     ("SL-M", "STOPMARKET", "StopMarket")],
)  # fmt: skip
def test_order_types_both_ways(ours, xts, book):
    assert mapping.ORDER_TYPES[ours] == xts
    assert mapping.order_type_of(xts) == ours and mapping.order_type_of(book) == ours


@pytest.mark.parametrize(
    ("xts", "ours"),
    [("New", "OPEN"), ("Open", "OPEN"), ("PartiallyFilled", "PARTIALLY_FILLED"), ("Filled", "FILLED"),
     ("Cancelled", "CANCELLED"), ("Rejected", "REJECTED"), ("Trigger Pending", "TRIGGER_PENDING")],
)  # fmt: skip
def test_statuses_map_to_ours(xts, ours):
    assert mapping.status_of(xts, current="OPEN") == ours


@pytest.mark.parametrize("xts", ["PendingNew", "PendingReplace", "PendingCancel", "Replaced", "SomethingNew"])
def test_transitional_and_unknown_statuses_keep_the_current_one(xts):
    assert mapping.status_of(xts, current="TRIGGER_PENDING") == "TRIGGER_PENDING"


def test_capabilities_are_what_xts_takes():
    caps = XtsAdapter.capabilities
    assert caps.exchanges == frozenset(mapping.SEGMENTS)
    assert caps.order_types == frozenset(mapping.ORDER_TYPES) and caps.varieties == frozenset({"regular"})
    assert caps.tag_length == 20 and not caps.gtt and caps.history == ()
    assert XtsAdapter.login is not None and XtsAdapter.login.kind == "api_key"


def test_tokens_name_the_segment_and_the_exchange_instrument():
    assert mapping.token_of("NSECM", 2885) == "1_2885" == mapping.token_of(1, "2885")
    assert mapping.parse_token("51_234567") == ("MCXFO", 234567)


@pytest.mark.parametrize(
    "bad", ["", "2885", "1_", "_2885", "9_2885", "1_-5", "1_0", "1_28x5", "1_2885_1", "\u0661_\u0662"]
)
def test_malformed_tokens_are_refused(bad):
    with pytest.raises(ValueError):
        mapping.parse_token(bad)


@given(st.text(max_size=30))
def test_parse_token_raises_only_value_error(text):
    try:
        segment, instrument = mapping.parse_token(text)
    except ValueError:
        return
    assert mapping.parse_token(mapping.token_of(segment, instrument)) == (segment, instrument)
