"""The periods and filters the trader's reports read, checked: IST date ranges, Indian financial years
(April to March) and the tradebook's filters. Each refusal names its field, as the API and the pages
show it (``extra["fields"]``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.errors import ApplicationError

IST = ZoneInfo("Asia/Kolkata")
IST_OFFSET = timedelta(hours=5, minutes=30)  # India keeps no daylight saving: a fixed offset
MAX_DAYS = 366  # the longest P&L or tradebook range, both ends counted
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)  # dates a report may name
SYMBOL_MAX = 64  # as long as a trading symbol may be (marketdata.Instrument.tradingsymbol)


class ReportInvalid(ApplicationError):
    """A report's filters refused; ``extra["fields"]`` maps each refused field to its code and message."""

    code = "report_filters_invalid"
    status = 422


@dataclass(frozen=True, slots=True)
class DateRange:
    """IST calendar days ``date_from`` to ``date_to``, both included."""

    date_from: date
    date_to: date

    def bounds(self) -> tuple[datetime, datetime]:
        """The aware datetimes [start, end) the range covers."""
        start = datetime.combine(self.date_from, time.min, tzinfo=IST)
        return start, datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=IST)

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1


@dataclass(frozen=True, slots=True)
class FinancialYear:
    """India's financial year starting 1 April of ``start_year`` (IST), e.g. 2025 is FY 2025-26."""

    start_year: int

    @property
    def label(self) -> str:
        return f"{self.start_year}-{(self.start_year + 1) % 100:02d}"

    @property
    def first_day(self) -> date:
        return date(self.start_year, 4, 1)

    @property
    def last_day(self) -> date:
        return date(self.start_year + 1, 3, 31)

    def range(self) -> DateRange:
        return DateRange(self.first_day, self.last_day)


def ist_day(moment: datetime) -> date:
    """The IST calendar day of the aware ``moment``."""
    return (moment.astimezone(IST)).date()


def today_ist() -> date:
    return ist_day(datetime.now(IST))


def financial_year_of(day: date) -> FinancialYear:
    return FinancialYear(day.year if day.month >= 4 else day.year - 1)


def _refuse(fields: dict[str, dict[str, str]]) -> ReportInvalid:
    first = next(iter(fields.values()))
    return ReportInvalid(first["message"], code=first["code"], extra={"fields": fields})


def _field(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _shown(raw: str) -> str:
    """Input echoed in a message: at most 40 characters, control characters escaped (repr)."""
    return repr(raw[:40])


def date_range(raw_from: str | None, raw_to: str | None, *, default: date | None = None) -> DateRange:
    """Return the range ``raw_from`` to ``raw_to`` (``YYYY-MM-DD``; an empty one is ``default``, today in
    IST unless given). Raises ReportInvalid naming each refused field: not a date, outside 2000-2099,
    reversed, or longer than MAX_DAYS."""
    fallback = default or today_ist()
    fields: dict[str, dict[str, str]] = {}
    days: dict[str, date] = {}
    for name, label, raw in (("from", "From", raw_from), ("to", "To", raw_to)):
        text = (raw or "").strip()
        if not text:
            days[name] = fallback
            continue
        try:
            day = date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            day = None
        if day is None:
            fields[name] = _field("date_invalid", f"{label} must be a date such as 2025-01-31, not {_shown(text)}.")
        elif not EARLIEST <= day <= LATEST:
            fields[name] = _field("date_out_of_range", f"{label} must be between {EARLIEST} and {LATEST}.")
        else:
            days[name] = day
    if not fields:
        span = (days["to"] - days["from"]).days + 1
        if span < 1:
            fields["from"] = _field("date_range_reversed", "From must not be after To.")
        elif span > MAX_DAYS:
            fields["to"] = _field(
                "date_range_too_long", f"The range covers {span} days; a report covers at most {MAX_DAYS}."
            )
    if fields:
        raise _refuse(fields)
    return DateRange(days["from"], days["to"])


def financial_year(raw: str | None, *, default: date | None = None) -> FinancialYear:
    """Return the financial year ``raw`` names (``2025`` or ``2025-26`` for April 2025 to March 2026; empty
    is the year of ``default``, today in IST unless given). Raises ReportInvalid on field ``fy``."""
    text = (raw or "").strip()
    if not text:
        return financial_year_of(default or today_ist())
    head, dash, tail = text.partition("-")
    year = int(head) if len(head) == 4 and head.isascii() and head.isdigit() else None
    if year is not None and dash:
        following = (year + 1) % 100
        if not (len(tail) == 2 and tail.isascii() and tail.isdigit() and int(tail) == following):
            year = None
    if year is None:
        raise _refuse({"fy": _field("financial_year_invalid", f"Year must read 2025 or 2025-26, not {_shown(text)}.")})
    if not EARLIEST.year <= year < LATEST.year:
        raise _refuse(
            {
                "fy": _field(
                    "financial_year_out_of_range", f"Year must be between {EARLIEST.year} and {LATEST.year - 1}."
                )
            }
        )
    return FinancialYear(year)


def text_filter(raw: str | None, field: str, label: str, *, most: int = SYMBOL_MAX) -> str:
    """Return a free-text filter trimmed (upper case): at most ``most`` printable characters. Raises
    ReportInvalid naming ``field`` otherwise (a NUL byte or a control character included)."""
    text = (raw or "").strip()
    if len(text) > most:
        raise _refuse({field: _field("filter_too_long", f"{label} has at most {most} characters.")})
    if not text.isprintable():
        raise _refuse({field: _field("filter_invalid", f"{label} may hold printable characters only.")})
    return text.upper()


def choice_filter(raw: str | None, field: str, label: str, choices: tuple[str, ...]) -> str:
    """Return ``raw`` (trimmed) when empty or one of ``choices``. Raises ReportInvalid naming ``field``."""
    text = (raw or "").strip()
    if text and text not in choices:
        raise _refuse({field: _field(f"{field}_unknown", f"{label} must be one of {', '.join(choices)}.")})
    return text
