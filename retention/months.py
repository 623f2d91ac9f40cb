"""Calendar months in India (IST), the unit of archives: ``YYYY-MM`` from 00:00 IST on the 1st."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from retention.errors import MonthInvalid

IST = ZoneInfo("Asia/Kolkata")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: object) -> Month:
        """Return the month ``YYYY-MM`` names; raise MonthInvalid for anything else."""
        match = _MONTH.fullmatch(text) if isinstance(text, str) else None
        if match is None or not 1 <= int(match[2]) <= 12 or not 2000 <= int(match[1]) <= 9998:
            shown = repr(text)[:40]
            raise MonthInvalid(f"{shown} is not a month: give YYYY-MM, such as 2026-01.", extra={"month": shown})
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def containing(cls, instant: dt.datetime) -> Month:
        local = instant.astimezone(IST)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> dt.datetime:
        """00:00 IST on the month's first day, as an aware datetime."""
        return dt.datetime(self.year, self.month, 1, tzinfo=IST)

    @property
    def end(self) -> dt.datetime:
        """00:00 IST on the next month's first day (excluded from this month)."""
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def is_closed(self, now: dt.datetime) -> bool:
        return now >= self.end
