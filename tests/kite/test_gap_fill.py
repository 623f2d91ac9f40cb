"""Filling a live feed's gap from Kite's history (``brokers.services.history.history_fill_gaps``, run
by the Kite feed source after a reconnect or a restart): the minutes after each instrument's newest
bar up to the minute in progress, read from the local Kite server and stored, nothing replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.services.history import history_fill_gaps
from marketdata.candles import Bar
from marketdata.models import Candle
from marketdata.services import candle_upsert_many
from tests.kite.fake_ticker import eventually

TOKEN = 738561
NOW = datetime(2026, 12, 7, 4, 10, 30, tzinfo=UTC)  # 09:40:30 IST


def kite_rows(first: datetime, minutes: int) -> list[list]:
    """Kite's minute candles from ``first``: [IST time, open, high, low, close, volume, oi], close 2000 + i."""
    ist = first.astimezone(UTC) + timedelta(hours=5, minutes=30)
    return [
        [(ist + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:00+0530"), 2000 + i, 2001 + i, 1999 + i, 2000 + i, 10, 0]
        for i in range(minutes)
    ]


def stored(instrument, ts: datetime, close: str) -> None:
    price = Decimal(close)
    candle_upsert_many(bars=[Bar(instrument.pk, ts, price, price, price, price, 1, 0)])


def closes(instrument) -> dict[datetime, Decimal]:
    return dict(Candle.objects.filter(instrument=instrument).order_by("ts").values_list("ts", "close"))


def test_the_minutes_after_the_newest_bar_up_to_the_minute_in_progress_are_read_and_stored(
    kite_account, world, fake_kite
):
    minute = NOW.replace(second=0)
    fake_kite.history[TOKEN] = kite_rows(minute - timedelta(minutes=10), 12)  # 09:30 to 09:41 IST
    stored(world.equity, minute - timedelta(minutes=6), "1000")  # the feed's last bar before the gap

    fill = history_fill_gaps(account=kite_account, instrument_ids=[world.equity.pk], end=NOW, lookback_minutes=375)

    assert fill.written == {world.equity.pk: 5} and fill.minutes == 5 and not fill.failed
    assert fill.since == {world.equity.pk: minute - timedelta(minutes=6)}
    bars = closes(world.equity)
    assert bars[minute - timedelta(minutes=6)] == Decimal("1000")  # the feed's own bar is kept
    assert [bars[minute - timedelta(minutes=n)] for n in range(5, 0, -1)] == [Decimal(2005 + i) for i in range(5)]
    assert minute not in bars  # the minute in progress is the live feed's
    recorded = fake_kite.last("GET", f"/instruments/historical/{TOKEN}/minute")
    assert recorded.query_dict["from"] == "2026-12-07 09:35:00" and recorded.query_dict["to"] == "2026-12-07 09:39:59"

    again = history_fill_gaps(account=kite_account, instrument_ids=[world.equity.pk], end=NOW, lookback_minutes=375)
    assert again.minutes == 0 and not again.since  # nothing missing any more: Kite is not asked again


def test_a_bar_the_feed_is_building_counts_and_a_series_too_old_or_absent_is_left_alone(kite_account, world, fake_kite):
    minute = NOW.replace(second=0)
    fake_kite.history[TOKEN] = kite_rows(minute - timedelta(minutes=10), 12)

    nothing = history_fill_gaps(account=kite_account, instrument_ids=[world.equity.pk], end=NOW, lookback_minutes=375)
    assert nothing.minutes == 0 and not nothing.since  # no bar at all: importing history is import_candles' work

    stored(world.equity, minute - timedelta(minutes=9), "1000")
    too_old = history_fill_gaps(account=kite_account, instrument_ids=[world.equity.pk], end=NOW, lookback_minutes=5)
    assert not too_old.since

    building = {world.equity.pk: minute - timedelta(minutes=2, seconds=-20)}  # not stored yet
    fill = history_fill_gaps(
        account=kite_account, instrument_ids=[world.equity.pk], end=NOW, lookback_minutes=375, newest=building
    )
    assert fill.since == {world.equity.pk: minute - timedelta(minutes=2)} and fill.minutes == 1
    assert closes(world.equity)[minute - timedelta(minutes=1)] == Decimal("2009")
    assert fake_kite.count("GET", f"/instruments/historical/{TOKEN}/minute") == 1


@pytest.mark.django_db(transaction=True)
def test_the_kite_feed_fills_on_its_own_thread_and_a_request_while_it_runs_makes_one_more_run(
    kite_account, world, fake_kite, settings
):
    from kite.feed_source import CandleGapFill
    from marketdata.feeds.publisher import Publisher

    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    fake_kite.history[TOKEN] = kite_rows(minute - timedelta(minutes=10), 12)
    stored(world.equity, minute - timedelta(minutes=4), "1000")
    publisher = Publisher(source="kite")
    gaps = CandleGapFill(account=kite_account, instrument_ids=[world.equity.pk], publisher=publisher)
    try:
        gaps.request("feed started")
        gaps.request("connection 0 reconnected")  # while the first runs: one more run after it
        eventually(lambda: len(gaps.fills) == 2 and not gaps._running, message="two fills")
        first, second = gaps.fills
        assert first.since == {world.equity.pk: minute - timedelta(minutes=4)} and first.minutes >= 3
        assert second.minutes <= 1  # nothing missing any more (but a minute that closed in between)
        assert closes(world.equity)[minute - timedelta(minutes=1)] == Decimal(2009)

        settings.KITE_GAP_FILL_MINUTES = 0  # off
        gaps.request("connection 0 reconnected")
        assert not gaps._running and len(gaps.fills) == 2
    finally:
        publisher.close()
