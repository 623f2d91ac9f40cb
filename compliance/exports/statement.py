"""What every export states about itself: the report, the organisation, the filters and when its rows
were read. The XLSX writes it on its "About" sheet, the PDF in its heading and the CSV as comment lines
(``# ``) before its header row (docs/compliance-reports.md); the audit event and the export job record
it too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from compliance.selectors import IST

COMMON_FILTERS = ("from", "to", "account", "algo_id", "source")  # every report's (ReportFilters.as_payload)


def _filter_order(name: str) -> tuple[int, str]:
    return (COMMON_FILTERS.index(name), "") if name in COMMON_FILTERS else (len(COMMON_FILTERS), name)


def _shown(value) -> str:
    return str(value) if value not in ("", None) else "any"


@dataclass(frozen=True, slots=True)
class ExportStatement:
    """``filters`` maps each filter's name to its value as the audit event records it (empty: any)."""

    title: str
    organisation: str
    report: str
    filters: Mapping[str, str]
    generated_at: datetime

    def filter_lines(self) -> list[tuple[str, str]]:
        """The filters as (name, value) lines, an empty value shown as "any": the filters every report
        has first, in COMMON_FILTERS' order, then a report's own by name. The order does not depend on
        the mapping's (a job's filters come back from a JSON column, PostgreSQL's jsonb reorders keys), so
        a report exported in the request and by a job states its filters alike."""
        return [(name, _shown(self.filters[name])) for name in sorted(self.filters, key=_filter_order)]

    def generated_text(self) -> str:
        """The generation time in IST and as the UTC instant (ISO 8601)."""
        ist = timezone.localtime(self.generated_at, IST).strftime("%Y-%m-%d %H:%M:%S IST")
        utc = self.generated_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"{ist} ({utc})"
