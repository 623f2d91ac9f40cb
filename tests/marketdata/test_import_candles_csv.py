"""``manage.py import_candles --csv``: documented columns, IST or zoned timestamps, every bad row named
by its line with nothing written, duplicates reported, the gaps report, and idempotent re-runs."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.candle_csv import BadRow, parse_row
from marketdata.models import Candle, Instrument
from tests.marketdata.bars import csv_text, session_minutes

GOOD = "timestamp,open,high,low,close,volume,oi\n"


@pytest.fixture
def infy(db):
    return Instrument.objects.create(
        exchange="NSE",
        tradingsymbol="INFY",
        name="INFOSYS",
        instrument_type="EQ",
        exchange_token="1594",
        segment="NSE",
        lot_size=1,
        tick_size=Decimal("0.05"),
    )


def run(path, *extra: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_candles", "--csv", str(path), "--symbol", "NSE:INFY", *extra, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_a_file_of_session_bars_and_reports_no_gaps(infy, tmp_path):
    minutes = session_minutes(date(2026, 1, 5), date(2026, 1, 9))
    path = tmp_path / "infy.csv"
    path.write_text(csv_text(minutes))

    out, err = run(path)

    stored = list(Candle.objects.filter(instrument_id=infy.pk).order_by("ts").values_list("ts", flat=True))
    assert stored == minutes
    assert f"imported {len(minutes)} bar(s)" in out
    assert "5 session(s) checked, 0 of 1875 minute(s) missing in 0 gap(s), 0 duplicate timestamp(s)" in out
    assert f"{len(minutes)}/{len(minutes)}" in err  # the progress bar


def test_a_timestamp_without_a_zone_is_ist_and_one_with_a_zone_is_read_as_given(infy, tmp_path):
    path = tmp_path / "infy.csv"
    path.write_text(GOOD + "2026-01-05 09:15,10,11,9,10.5,100,\n2026-01-05T04:16:00Z,10,11,9,10.5,100,7\n")

    run(path)

    bars = list(Candle.objects.filter(instrument_id=infy.pk).order_by("ts"))
    assert [b.ts for b in bars] == [datetime(2026, 1, 5, 3, 45, tzinfo=UTC), datetime(2026, 1, 5, 4, 16, tzinfo=UTC)]
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume, bars[0].oi) == (
        Decimal(10),
        Decimal(11),
        Decimal(9),
        Decimal("10.5"),
        100,
        0,
    )
    assert bars[1].oi == 7


def test_every_bad_row_is_named_by_its_line_and_nothing_is_written(infy, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        GOOD
        + "2026-01-05 09:15,10,11,9,10.5,100,0\n"
        + "2026-01-05 09:16,10,9,9,10.5,100,0\n"  # high below open
        + "yesterday,10,11,9,10.5,100,0\n"
        + "2026-01-05 09:18:30,10,11,9,10.5,100,0\n"
        + "2026-01-05 09:19,10,11,9,10.5,-5,0\n"
    )
    err = io.StringIO()

    with pytest.raises(CommandError, match="4 bad row"):
        call_command("import_candles", "--csv", str(path), "--symbol", "NSE:INFY", stdout=io.StringIO(), stderr=err)

    lines = [line for line in err.getvalue().splitlines() if ": line " in line]
    assert [line.split(": line ")[1].split(":")[0] for line in lines] == ["3", "4", "5", "6"]
    assert "high must be the highest" in lines[0] and "not an ISO 8601 time" in lines[1]
    assert "whole minute" in lines[2] and "volume '-5'" in lines[3]
    assert not Candle.objects.filter(instrument_id=infy.pk).exists()


def test_a_header_without_the_required_columns_is_refused(infy, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time,open,high,low,close\n2026-01-05 09:15,10,11,9,10.5\n")

    with pytest.raises(CommandError, match="the header lacks timestamp, volume"):
        run(path)


def test_duplicate_timestamps_are_reported_and_the_last_row_kept(infy, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(GOOD + "2026-01-05 09:15,10,11,9,10.5,100,0\n2026-01-05 09:15,10,12,9,11,200,0\n")
    report = tmp_path / "report.csv"

    out, _ = run(path, "--report", str(report))

    assert "374 of 375 minute(s) missing in 1 gap(s), 1 duplicate timestamp(s)" in out
    assert Candle.objects.get(instrument_id=infy.pk).close == Decimal(11)
    assert report.read_text().splitlines() == [
        "kind,start_ist,end_ist,minutes,count",
        "gap,2026-01-05 09:16,2026-01-05 15:29,374,",
        "duplicate,2026-01-05 09:15,2026-01-05 09:15,1,2",
    ]


def test_importing_a_file_twice_changes_nothing(infy, tmp_path):
    path = tmp_path / "infy.csv"
    path.write_text(csv_text(session_minutes(date(2026, 1, 5), date(2026, 1, 5))))
    run(path)
    before = list(
        Candle.objects.filter(instrument_id=infy.pk).order_by("ts").values_list("ts", "open", "close", "volume")
    )

    run(path)

    assert (
        list(Candle.objects.filter(instrument_id=infy.pk).order_by("ts").values_list("ts", "open", "close", "volume"))
        == before
    )


def test_a_file_that_is_not_utf8_is_refused(infy, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(GOOD.encode() + b"2026-01-05 09:15,10,11,9,10.5,100,\xff\n")

    with pytest.raises(CommandError, match="not UTF-8"):
        run(path)


def test_an_unknown_symbol_is_refused(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(GOOD)

    with pytest.raises(CommandError, match="not an active instrument"):
        run(path)


_FIELD = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["NaN", "Infinity", "-1", "0", "1e400", "99999999999", "1.00001", "\x00", "", " ", "1_0"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    timestamp=st.one_of(st.text(max_size=40), st.datetimes().map(str), st.just("2026-01-05 09:15")),
    open_=_FIELD,
    high=_FIELD,
    low=_FIELD,
    close=_FIELD,
    volume=_FIELD,
    oi=st.one_of(st.none(), _FIELD),
)
def test_any_row_is_a_valid_bar_or_a_bad_row_never_another_error(timestamp, open_, high, low, close, volume, oi):
    row = {"timestamp": timestamp, "open": open_, "high": high, "low": low, "close": close, "volume": volume, "oi": oi}
    try:
        bar = parse_row(row, instrument_id=1)
    except BadRow as exc:
        assert str(exc)
        return
    assert bar.ts.tzinfo is UTC and bar.ts.second == 0
    assert 0 < bar.low <= min(bar.open, bar.close) and bar.high >= max(bar.open, bar.close)
    for price in (bar.open, bar.high, bar.low, bar.close):
        assert price == price.quantize(Decimal("0.0001")) and price < Decimal("1e10")
    assert 0 <= bar.volume < 2**63 and 0 <= bar.oi < 2**63
