"""Missing minutes and duplicate timestamps in a run of 1-minute bars, as an import reports them.

A session is NSE's cash session, 09:15 to 15:29 IST (the bar opening at 15:29 is the last), on a
market day: a weekday not listed in ``settings.NSE_HOLIDAYS``. A gap is a run of consecutive session
minutes with no bar; a duplicate is a timestamp the input gave more than once.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TextIO

from marketdata.hours import IST, MARKET_CLOSE, MARKET_OPEN

MINUTE = timedelta(minutes=1)
SESSION_MINUTES = 375  # 09:15 .. 15:29


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime  # the first missing minute (UTC)
    minutes: int

    @property
    def end(self) -> datetime:
        """The last missing minute (UTC)."""
        return self.start + (self.minutes - 1) * MINUTE


@dataclass
class GapReport:
    sessions: int = 0  # market days checked
    expected: int = 0  # session minutes in them
    gaps: list[Gap] = field(default_factory=list)
    duplicates: dict[datetime, int] = field(default_factory=dict)  # timestamp -> times given

    @property
    def missing(self) -> int:
        return sum(gap.minutes for gap in self.gaps)

    def summary(self) -> str:
        """One line: sessions, missing minutes in how many gaps, duplicates."""
        return (
            f"{self.sessions} session(s) checked, {self.missing} of {self.expected} minute(s) missing "
            f"in {len(self.gaps)} gap(s), {len(self.duplicates)} duplicate timestamp(s)"
        )

    def write_csv(self, out: TextIO) -> None:
        """Write ``kind,start_ist,end_ist,minutes,count``: a row per gap, then one per duplicate."""
        writer = csv.writer(out)
        writer.writerow(["kind", "start_ist", "end_ist", "minutes", "count"])
        for gap in self.gaps:
            writer.writerow(["gap", _ist(gap.start), _ist(gap.end), gap.minutes, ""])
        for ts, count in sorted(self.duplicates.items()):
            writer.writerow(["duplicate", _ist(ts), _ist(ts), 1, count])


def _ist(moment: datetime) -> str:
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M")


def market_days(first: date, last: date, *, holidays: Iterable[date] = ()) -> list[date]:
    """The weekdays from ``first`` to ``last`` (both included) that are not ``holidays``."""
    closed = set(holidays)
    days, day = [], first
    while day <= last:
        if day.weekday() < 5 and day not in closed:
            days.append(day)
        day += timedelta(days=1)
    return days


def session_start(day: date) -> datetime:
    """The first minute of ``day``'s session (UTC)."""
    return datetime.combine(day, MARKET_OPEN, tzinfo=IST).astimezone(UTC)


def duplicates_of(timestamps: Iterable[datetime]) -> dict[datetime, int]:
    """The timestamps given more than once, with how many times."""
    return {ts: n for ts, n in Counter(timestamps).items() if n > 1}


def find_gaps(
    present: Iterable[datetime],
    *,
    first: date,
    last: date,
    holidays: Iterable[date] = (),
    duplicates: dict[datetime, int] | None = None,
) -> GapReport:
    """The sessions' minutes from ``first`` to ``last`` (IST days) missing from ``present`` (UTC bar
    minutes), merged into runs; ``duplicates`` is carried into the report as given."""
    have = set(present)
    report = GapReport(duplicates=dict(duplicates or {}))
    close = time(MARKET_CLOSE.hour, MARKET_CLOSE.minute)
    for day in market_days(first, last, holidays=holidays):
        report.sessions += 1
        minute, end = session_start(day), datetime.combine(day, close, tzinfo=IST).astimezone(UTC)
        run_start, run = minute, 0
        while minute < end:
            report.expected += 1
            if minute in have:
                if run:
                    report.gaps.append(Gap(run_start, run))
                run = 0
            else:
                if not run:
                    run_start = minute
                run += 1
            minute += MINUTE
        if run:
            report.gaps.append(Gap(run_start, run))
    return report
