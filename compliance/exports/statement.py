"""What every export states about itself: the report, the organisation, the filters and when its rows
were read. The XLSX writes it on its "About" sheet and the PDF in its heading; a CSV stays data alone,
and its statement is in the audit event and the export job (docs/compliance-reports.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from compliance.selectors import IST


@dataclass(frozen=True, slots=True)
class ExportStatement:
    """``filters`` maps each filter's name to its value as the audit event records it (empty: any)."""

    title: str
    organisation: str
    report: str
    filters: Mapping[str, str]
    generated_at: datetime

    def filter_lines(self) -> list[tuple[str, str]]:
        """The filters as (name, value) lines, an empty value shown as "any"."""
        return [(name, str(value) if value not in ("", None) else "any") for name, value in self.filters.items()]

    def generated_text(self) -> str:
        """The generation time in IST and as the UTC instant (ISO 8601)."""
        ist = timezone.localtime(self.generated_at, IST).strftime("%Y-%m-%d %H:%M:%S IST")
        utc = self.generated_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"{ist} ({utc})"
