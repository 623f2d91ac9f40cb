"""NSE's cash session, 09:15 to 15:30 IST on weekdays, and its scrape-time gauge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from marketdata import metrics
from marketdata.hours import IST, market_open

MONDAY = datetime(2026, 12, 7, tzinfo=IST)


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (MONDAY.replace(hour=9, minute=14, second=59), False),  # pre-open
        (MONDAY.replace(hour=9, minute=15), True),
        (MONDAY.replace(hour=15, minute=29, second=59), True),
        (MONDAY.replace(hour=15, minute=30), False),
        (datetime(2026, 12, 7, 3, 45, tzinfo=UTC), True),  # 09:15 IST, given in UTC
        (datetime(2026, 12, 7, 3, 44, tzinfo=UTC), False),
        (MONDAY.replace(hour=20), False),
        (MONDAY + timedelta(days=4, hours=12), True),  # Friday
        (MONDAY + timedelta(days=5, hours=12), False),  # Saturday
        (MONDAY + timedelta(days=6, hours=12), False),  # Sunday
        # Sunday 22:00 in New York is Monday 08:30 IST: closed; Monday 00:00 there is 10:30 IST: open.
        (datetime(2026, 12, 6, 22, 0, tzinfo=timezone(timedelta(hours=-5))), False),
        (datetime(2026, 12, 7, 0, 0, tzinfo=timezone(timedelta(hours=-5))), True),
    ],
)
def test_the_market_is_open_on_weekdays_from_0915_to_1530_india_time(now, is_open):
    assert market_open(now) is is_open


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="aware"):
        market_open(datetime(2026, 12, 7, 10, 0))


@pytest.mark.parametrize(("hour", "value"), [(10, 1.0), (16, 0.0)])
def test_the_market_open_gauge_is_measured_at_scrape_time(monkeypatch, hour, value):
    monkeypatch.setattr(metrics.timezone, "now", lambda: MONDAY.replace(hour=hour))
    [family] = list(metrics.MARKET_OPEN.collect())
    assert family.name == "terminal_market_open" and family.samples[0].value == value
