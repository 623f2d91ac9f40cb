"""What the broker families share: a symbol master into the mapping (matched by exchange token, in one
transaction, a short or too different file refused), refusals by the broker's words, the JSON first
step of every envelope, TOTP, and the websocket feed's backoff."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.adapters.base import (
    BrokerInsufficientMargin,
    BrokerMarketClosed,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSegmentNotEnabled,
    BrokerUnavailable,
)
from brokers.families.login import totp_now
from brokers.families.master import MasterImportRefused, MasterRow, master_import
from brokers.families.stream import Backoff, StreamTick, quote_of
from brokers.families.wire import Endpoint, json_answer, refusal
from brokers.instrument_map import broker_symbol_for, instrument_map_invalidate
from brokers.models import BrokerInstrument
from marketdata.models import Instrument


def _row(token="2885", symbol="RELIANCE-EQ", broker_token=None, exchange="NSE"):
    return MasterRow(exchange, token, broker_token or token, symbol, exchange)


@pytest.mark.django_db
def test_a_master_maps_our_instruments_by_exchange_token_and_counts_the_rest(world):
    rows = [_row(), _row("99999", "UNKNOWN-EQ"), _row("2885", "DUP-EQ", "7"), (4, "no token")]
    report = master_import("fam", rows, min_rows=1)
    instrument_map_invalidate()
    assert (report.rows, report.mapped, report.unmatched, report.duplicates, report.error_count) == (3, 1, 1, 1, 1)
    assert report.errors == [(4, "no token")]
    symbol = broker_symbol_for(broker="fam", instrument_id=world.equity.pk)
    assert symbol is not None and (symbol.token, symbol.tradingsymbol) == ("2885", "RELIANCE-EQ")


@pytest.mark.django_db
def test_a_short_or_too_different_master_changes_nothing(world):
    master_import("fam", [_row()], min_rows=1)
    with pytest.raises(MasterImportRefused):
        master_import("fam", [_row()], min_rows=10)
    with pytest.raises(MasterImportRefused):  # it maps none of today's mapping
        master_import("fam", [_row("99999", "OTHER-EQ")], min_rows=1)
    assert BrokerInstrument.objects.get(broker="fam").instrument_id == world.equity.pk
    assert Instrument.objects.get(pk=world.equity.pk).is_active


@pytest.mark.django_db
def test_an_instrument_the_new_master_no_longer_lists_leaves_the_mapping(world):
    master_import("fam", [_row(), _row(world.future.exchange_token, "NIFTYFUT", exchange=world.future.exchange)])
    report = master_import("fam", [_row()], min_percent=40)
    assert report.retired == 1 and not BrokerInstrument.objects.filter(broker="fam", instrument=world.future).exists()


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("RMS:Margin Exceeds, Required:1000, Available:10", BrokerInsufficientMargin),
        ("Insufficient balance", BrokerInsufficientMargin),
        ("Market is closed", BrokerMarketClosed),
        ("Segment not enabled for the client", BrokerSegmentNotEnabled),
        ("Invalid order id", BrokerRejected),
        ("price out of range", BrokerRejected),
    ],
)
def test_a_refusal_is_as_precise_as_the_brokers_words(message, kind):
    assert type(refusal(message)) is kind


def test_an_unknown_order_is_not_found_only_for_a_call_naming_one():
    assert isinstance(refusal("Order does not exist", order_specific=True), BrokerOrderNotFound)
    assert type(refusal("Order does not exist")) is BrokerRejected


def test_the_json_first_step_maps_429_and_bodies_that_are_not_json():
    with pytest.raises(BrokerRateLimited, match="slow down"):
        json_answer(429, "application/json", b'{"message": "slow down"}', broker="x")
    for body in (b"", b"<html>", b'{"a": ', b'{"a": NaN}'):
        with pytest.raises(BrokerUnavailable):
            json_answer(200, "application/json", body, broker="x")
    assert json_answer(200, "application/json", b'{"p": 1.10}', broker="x") == {"p": Decimal("1.10")}


@given(st.binary(max_size=200))
def test_the_json_first_step_never_raises_anything_but_typed_errors(body):
    with contextlib.suppress(BrokerUnavailable):
        json_answer(200, "application/json", body, broker="x")


def test_an_id_in_a_path_is_checked_before_it_is_sent():
    endpoint = Endpoint("DELETE", "/orders/{order_id}")
    assert endpoint.url_path({"order_id": "2512060001"}) == "/orders/2512060001"
    for bad in ("../x", "a b", "", "x" * 200, "1?x=2", "\x00"):
        with pytest.raises(ValueError):
            endpoint.url_path({"order_id": bad})


def test_totp_follows_rfc_6238_and_refuses_a_secret_that_is_not_base32():
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # "12345678901234567890", RFC 6238's SHA-1 key
    assert totp_now(secret, at=59) == "287082" and totp_now(secret, at=1111111109) == "081804"
    for bad in ("", "not base32!", "0189"):
        with pytest.raises(ValueError):
            totp_now(bad)


def test_the_backoff_grows_to_its_cap_with_jitter():
    backoff, rng = Backoff(initial=0.5, cap=30, factor=2, jitter=0.5), random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(10)]
    assert all(0.25 <= d <= 0.5 for d in delays[:1]) and all(15 <= d <= 30 for d in delays[7:])
    assert backoff.delay(10_000, rng) <= 30


def test_a_tick_without_a_traded_price_gives_no_quote():
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assert quote_of(StreamTick(token="1"), 1, now) is None and quote_of(StreamTick("1", ltp=Decimal(0)), 1, now) is None
    quote = quote_of(StreamTick("1", ltp=Decimal("10.5"), bid=Decimal("10.45")), 7, now)
    assert quote is not None and (quote.instrument_id, quote.ltp, quote.bid, quote.ts) == (
        7,
        Decimal("10.5"),
        Decimal("10.45"),
        now,
    )
