import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.feeds.replay import InvalidReplayFile, ReplayFeed
from marketdata.models import Instrument

pytestmark = pytest.mark.django_db


@pytest.fixture
def instruments():
    return [
        Instrument.objects.create(exchange="NSE", segment="NSE", tradingsymbol=s, exchange_token=str(t),
                                  instrument_type="EQ")
        for t, s in enumerate(["RELIANCE", "TCS"], start=1)
    ]  # fmt: skip


def _play(path, instruments, **options):
    batches = []
    feed = ReplayFeed(on_quotes=batches.append, path=path, speed=0, **options)
    feed.subscribe(instruments)
    feed.run(threading.Event())
    return batches


def test_ticks_replay_in_time_order_batched_by_timestamp(tmp_path, instruments):
    path = tmp_path / "ticks.csv"
    path.write_text(
        "ts,instrument,ltp,volume\n"
        "2026-11-20T09:15:01,NSE:TCS,3150.5,10\n"
        "2026-11-20T09:15:00,NSE:RELIANCE,1550,100\n"
        f"2026-11-20T09:15:01,{instruments[0].pk},1551,150\n"
    )
    batches = _play(path, instruments, keep_timestamps=True)
    assert [[(q.instrument_id, q.ltp) for q in b] for b in batches] == [
        [(instruments[0].pk, Decimal("1550"))],
        [(instruments[1].pk, Decimal("3150.5")), (instruments[0].pk, Decimal("1551"))],
    ]
    assert batches[0][0].ts == datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # a naive time is IST


def test_candles_replay_as_four_ticks_each_and_rebase_to_now(tmp_path, instruments):
    path = tmp_path / "candles.csv"
    path.write_text(
        "ts,instrument,open,high,low,close,volume\n"
        "2026-11-20T09:15:00+05:30,NSE:RELIANCE,100,103,99,102,400\n"
        "2026-11-20T09:16:00+05:30,NSE:RELIANCE,102,102.5,100,100.5,100\n"
    )
    ticks = [q for b in _play(path, instruments) for q in b]
    assert [q.ltp for q in ticks] == [Decimal(x) for x in ("100", "99", "103", "102", "102", "102.5", "100", "100.5")]
    assert [q.volume for q in ticks] == [100, 200, 300, 400, 425, 450, 475, 500]
    assert abs((ticks[0].ts - datetime.now(UTC)).total_seconds()) < 5


def test_a_bad_replay_file_names_the_line(tmp_path, instruments):
    path = tmp_path / "ticks.csv"
    path.write_text("ts,instrument,ltp\n2026-11-20T09:15:00,NSE:RELIANCE,1550\n2026-11-20T09:15:01,NSE:NOPE,1\n")
    with pytest.raises(InvalidReplayFile, match="line 3: unknown instrument 'NSE:NOPE'"):
        ReplayFeed(on_quotes=print, path=path).subscribe(instruments)
    path.write_text("when,what\n1,2\n")
    with pytest.raises(InvalidReplayFile, match="the header must have"):
        ReplayFeed(on_quotes=print, path=path).subscribe(instruments)
