"""Kite's historical candles: the exact request, the parsed bars, the range and interval limits, the
historical rate limit, and the adapter's reading of our instrument through the Kite mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from brokers.adapters.base import BrokerRejected, BrokerUnavailable
from brokers.adapters.registry import adapter_for, family
from kite.client import HISTORICAL_DAYS
from kite.rate_limits import LIMITS, EndpointClass
from tests.kite import fake_kite as fk

TOKEN = 738561
START = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)  # 09:15 IST


def rows(*times: str) -> list[list]:
    return [[t, 1000.5, 1001, 999.75, 1000.25, 1200, 34] for t in times]


def test_it_asks_kite_for_the_range_in_ist_with_open_interest(kite, fake_kite):
    fake_kite.history[TOKEN] = rows("2026-01-05T09:15:00+0530", "2026-01-05T09:16:00+0530")

    bars = kite.historical_candles(TOKEN, "minute", START, START + timedelta(minutes=1))

    recorded = fake_kite.last("GET", f"/instruments/historical/{TOKEN}/minute")
    assert recorded.query == [
        ("from", "2026-01-05 09:15:00"),
        ("to", "2026-01-05 09:16:00"),
        ("continuous", "0"),
        ("oi", "1"),
    ]
    assert recorded.headers["authorization"] == f"token {fk.API_KEY}:{fk.ACCESS_TOKEN}"
    assert recorded.headers["x-kite-version"] == "3"
    assert [b.ts for b in bars] == [START, START + timedelta(minutes=1)]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("1000.5"),
        Decimal("1001"),
        Decimal("999.75"),
        Decimal("1000.25"),
    )
    assert (first.volume, first.oi) == (1200, 34)


def test_the_intervals_and_their_ranges_are_kites_documented_ones():
    assert HISTORICAL_DAYS == {
        "minute": 60,
        "3minute": 100,
        "5minute": 100,
        "10minute": 100,
        "15minute": 200,
        "30minute": 200,
        "60minute": 400,
        "day": 2000,
    }
    assert family("kite").capabilities.history_days("minute") == 60
    assert family("paper").capabilities.history == ()


@pytest.mark.parametrize(
    "interval, start, end",
    [
        ("minute", START, START + timedelta(days=60, minutes=1)),  # over 60 days
        ("week", START, START + timedelta(days=1)),  # not an interval of Kite's
        ("minute", START + timedelta(days=1), START),  # reversed
        ("minute", START.replace(tzinfo=None), START.replace(tzinfo=None) + timedelta(days=1)),  # naive
    ],
)
def test_a_request_kite_would_refuse_is_not_sent(kite, fake_kite, interval, start, end):
    with pytest.raises(ValueError):
        kite.historical_candles(TOKEN, interval, start, end)

    assert fake_kite.requests == []


def test_sixty_days_of_minutes_is_one_request(kite, fake_kite):
    kite.historical_candles(TOKEN, "minute", START, START + timedelta(days=60))

    assert fake_kite.count("GET", f"/instruments/historical/{TOKEN}/minute") == 1


def test_historical_requests_count_against_their_own_limit_of_three_a_second(kite, fake_kite, clock):
    for _ in range(3):
        kite.historical_candles(TOKEN, "minute", START, START + timedelta(hours=1))
    assert clock.slept == []
    kite.ltp(["NSE:INFY"])  # another endpoint class: its own counter
    assert clock.slept == []

    kite.historical_candles(TOKEN, "minute", START, START + timedelta(hours=1))

    assert len(clock.slept) == 1 and 0 < clock.slept[0] <= 1.0
    assert LIMITS[EndpointClass.HISTORICAL][0].name == "historical"


@pytest.mark.parametrize(
    "candles",
    [
        [["2026-01-05T09:15:00", 1, 1, 1, 1, 1]],  # no zone
        [["2026-01-05T09:15:00+0530", 1, 1, 1, 1]],  # five values
        [["2026-01-05T09:15:00+0530", "x", 1, 1, 1, 1]],  # not a price
        [["2026-01-05T09:15:00+0530", 1, 1, 1, 1, 1.5]],  # fractional volume
        [None],
    ],
)
def test_a_malformed_answer_is_the_broker_unavailable(kite, fake_kite, candles):
    fake_kite.history[TOKEN] = candles

    with pytest.raises(BrokerUnavailable):
        kite.historical_candles(TOKEN, "minute", START, START + timedelta(hours=1))


def test_the_adapter_reads_our_instrument_by_its_kite_token_with_the_end_excluded(kite_account, fake_kite, world):
    fake_kite.history[TOKEN] = rows("2026-01-05T09:15:00+0530", "2026-01-05T09:16:00+0530", "2026-01-05T09:17:00+0530")

    bars = adapter_for(kite_account).historical_candles(
        instrument_id=world.equity.pk, interval="minute", start=START, end=START + timedelta(minutes=2)
    )

    assert [b.ts for b in bars] == [START, START + timedelta(minutes=1)]
    assert fake_kite.last("GET", f"/instruments/historical/{TOKEN}/minute").query_dict["to"] == "2026-01-05 09:16:59"


def test_the_adapter_refuses_an_interval_kite_does_not_serve_without_sending(kite_account, fake_kite, world):
    with pytest.raises(BrokerRejected) as caught:
        adapter_for(kite_account).historical_candles(
            instrument_id=world.equity.pk, interval="week", start=START, end=START + timedelta(days=1)
        )

    assert caught.value.code == "broker_no_history"
    assert not any(r.path.startswith("/instruments/historical") for r in fake_kite.requests)
