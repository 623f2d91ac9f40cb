from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from marketdata import services
from marketdata.candles import Bar, CandleAggregator
from marketdata.errors import InvalidRange, InvalidTimeframe
from marketdata.models import Candle
from marketdata.quotes import Quote
from marketdata.selectors import candle_history

T0 = datetime(2026, 11, 25, 3, 45, tzinfo=UTC)  # 09:15 IST


def _tick(seconds, ltp, volume, oi=0, instrument_id=1):
    ts = T0 + timedelta(seconds=seconds)
    return Quote(instrument_id=instrument_id, ltp=Decimal(ltp), ts=ts, volume=volume, oi=oi)


# Hand-computed: minute 09:15 O 100 H 101.5 L 99.5 C 100.5, volume 1300 - 1000 = 300 (the first tick
# is the baseline); minute 09:16 O 101 H 102 L 100 C 100, volume 2000 - 1300 = 700; minute 09:18
# (09:17 has no trades) after a cumulative-volume reset: O = C = 98, volume 50.
TICKS = [
    _tick(0, "100", 1000, 10),
    _tick(10, "101.5", 1100, 12),
    _tick(20, "99.5", 1250, 12),
    _tick(59.9, "100.5", 1300, 15),
    _tick(60, "101", 1500, 15),
    _tick(75, "102", 1700, 16),
    _tick(90, "100", 1900, 16),
    _tick(119, "100", 2000, 18),
    _tick(180, "98", 50, 18),
]
EXPECTED = [
    Bar(1, T0, Decimal("100"), Decimal("101.5"), Decimal("99.5"), Decimal("100.5"), 300, 15),
    Bar(1, T0 + timedelta(minutes=1), Decimal("101"), Decimal("102"), Decimal("100"), Decimal("100"), 700, 18),
    Bar(1, T0 + timedelta(minutes=3), Decimal("98"), Decimal("98"), Decimal("98"), Decimal("98"), 50, 18),
]


def test_one_minute_bars_are_exact_on_a_hand_computed_sequence():
    aggregator = CandleAggregator()
    aggregator.add(TICKS)
    assert aggregator.drain() == EXPECTED
    assert aggregator.drain() == []


def test_draining_mid_minute_then_continuing_gives_the_same_bars():
    aggregator = CandleAggregator()
    drained = []
    for tick in TICKS:
        aggregator.add([tick])
        drained.extend(aggregator.drain())
    final = {bar.ts: bar for bar in drained}  # later copies of a bar replace earlier ones, as the upsert does
    assert list(final.values()) == EXPECTED


def test_a_late_tick_for_a_stored_minute_is_ignored():
    aggregator = CandleAggregator()
    aggregator.add(TICKS[:5])
    aggregator.add([_tick(30, "500", 1600)])
    assert all(bar.high < 500 for bar in aggregator.drain())


@pytest.mark.django_db
def test_stored_bars_are_upserted_and_higher_timeframes_are_derived():
    aggregator = CandleAggregator()
    aggregator.add(TICKS)
    services.candle_upsert_many(bars=aggregator.drain())
    services.candle_upsert_many(bars=EXPECTED)  # idempotent
    assert Candle.objects.count() == 3
    end = T0 + timedelta(hours=1)
    one = candle_history(instrument_id=1, timeframe="1m", start=T0, end=end)
    assert [(r.ts, r.open, r.close, r.volume) for r in one] == [(b.ts, b.open, b.close, b.volume) for b in EXPECTED]
    five = candle_history(instrument_id=1, timeframe="5m", start=T0, end=end)
    assert len(five) == 1
    bar = five[0]
    assert (bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.oi) == (
        T0,
        Decimal("100"),
        Decimal("102"),
        Decimal("98"),
        Decimal("98"),
        1050,
        18,
    )
    day = candle_history(instrument_id=1, timeframe="1d", start=T0 - timedelta(hours=4), end=end)
    assert [r.ts for r in day] == [datetime(2026, 11, 24, 18, 30, tzinfo=UTC)]  # IST midnight
    assert day[0].volume == 1050


@pytest.mark.django_db
def test_bad_history_requests_are_refused_clearly():
    with pytest.raises(InvalidTimeframe, match="7m"):
        candle_history(instrument_id=1, timeframe="7m", start=T0, end=T0 + timedelta(hours=1))
    with pytest.raises(InvalidRange, match="after start"):
        candle_history(instrument_id=1, timeframe="1m", start=T0, end=T0)
    with pytest.raises(InvalidRange, match="more than"):
        candle_history(instrument_id=1, timeframe="1m", start=T0, end=T0 + timedelta(days=30))


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_stores_candles_in_monthly_partitions_created_on_demand():
    services._known_partitions.clear()
    old = Bar(1, datetime(2024, 3, 5, 4, 0, tzinfo=UTC), *(Decimal("10"),) * 4, 5, 0)
    services.candle_upsert_many(bars=[old, *EXPECTED])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'marketdata_candle'"
        )
        partitions = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT tableoid::regclass::text FROM marketdata_candle WHERE ts = %s", [old.ts])
        assert cursor.fetchone()[0] == "marketdata_candle_y2024m03"
    assert {"marketdata_candle_y2024m03", "marketdata_candle_y2026m11"} <= partitions
    assert services.candle_partitions_ensure(months_ahead=2) == []  # the migration made them already
    five = candle_history(instrument_id=1, timeframe="5m", start=T0, end=T0 + timedelta(hours=1))
    assert [(r.open, r.high, r.low, r.close, r.volume) for r in five] == [
        (Decimal("100"), Decimal("102"), Decimal("98"), Decimal("98"), 1050)
    ]
    services._known_partitions.clear()


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_beat_task_creates_partitions_ahead():
    from marketdata.tasks import ensure_candle_partitions

    created = ensure_candle_partitions(months_ahead=5)
    with connection.cursor() as cursor:
        for name in created:
            cursor.execute("SELECT to_regclass(%s)", [name])
            assert cursor.fetchone()[0] is not None
    assert len(created) == 3  # the migration covered this month and the next two
    assert ensure_candle_partitions(months_ahead=5) == []
