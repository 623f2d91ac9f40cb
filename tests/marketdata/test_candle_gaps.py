"""The gaps report: session minutes 09:15-15:29 IST on market days, holidays and weekends skipped,
missing minutes merged into runs, duplicates carried along."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

from marketdata.gaps import duplicates_of, find_gaps, market_days, session_start
from tests.marketdata.bars import session_minutes

MONDAY = date(2026, 1, 5)


def test_a_week_has_five_market_days_less_its_holidays():
    assert market_days(MONDAY, MONDAY + timedelta(days=6)) == [MONDAY + timedelta(days=n) for n in range(5)]
    assert market_days(MONDAY, MONDAY + timedelta(days=6), holidays=[MONDAY]) == [
        MONDAY + timedelta(days=n) for n in range(1, 5)
    ]


def test_a_session_runs_from_0915_to_the_bar_opening_at_1529_ist():
    minutes = session_minutes(MONDAY, MONDAY)

    assert minutes[0] == session_start(MONDAY) == datetime(2026, 1, 5, 3, 45, tzinfo=UTC)
    assert minutes[-1] == datetime(2026, 1, 5, 9, 59, tzinfo=UTC)  # 15:29 IST
    assert len(minutes) == 375


def test_missing_minutes_are_merged_into_runs_per_session():
    minutes = session_minutes(MONDAY, MONDAY + timedelta(days=1))
    present = [m for i, m in enumerate(minutes) if i not in {0, 1, 2, 374, 375}]

    report = find_gaps(present, first=MONDAY, last=MONDAY + timedelta(days=1))

    assert [(g.start, g.minutes) for g in report.gaps] == [
        (minutes[0], 3),
        (minutes[374], 1),  # Monday's last minute
        (minutes[375], 1),  # Tuesday's first: another session, another gap
    ]
    assert (report.sessions, report.expected, report.missing) == (2, 750, 5)


def test_weekends_and_holidays_are_not_gaps():
    present = session_minutes(MONDAY, MONDAY + timedelta(days=6), holidays=[MONDAY + timedelta(days=2)])

    report = find_gaps(present, first=MONDAY, last=MONDAY + timedelta(days=6), holidays=[MONDAY + timedelta(days=2)])

    assert report.gaps == [] and report.sessions == 4


def test_the_report_csv_names_gaps_and_duplicates_in_ist():
    first = session_start(MONDAY)
    report = find_gaps(
        session_minutes(MONDAY, MONDAY)[1:],
        first=MONDAY,
        last=MONDAY,
        duplicates=duplicates_of([first + timedelta(minutes=5)] * 3 + [first]),
    )
    out = io.StringIO()

    report.write_csv(out)

    assert out.getvalue().splitlines() == [
        "kind,start_ist,end_ist,minutes,count",
        "gap,2026-01-05 09:15,2026-01-05 09:15,1,",
        "duplicate,2026-01-05 09:20,2026-01-05 09:20,1,3",
    ]
    assert report.summary() == "1 session(s) checked, 1 of 375 minute(s) missing in 1 gap(s), 1 duplicate timestamp(s)"
