"""The export formats and one writer over them: ``write_export`` writes a report's rows in a format to
a binary file and counts them, telling ``progress`` as it goes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from compliance.exports import pdf, xlsx
from compliance.exports.chart import ChartSpec
from compliance.exports.csvfile import write_csv
from compliance.exports.statement import ExportStatement

EXPORT_FORMATS = ("csv", "xlsx", "pdf")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "xlsx": xlsx.CONTENT_TYPE, "pdf": pdf.CONTENT_TYPE}


class RowCounter:
    """Iterate ``rows``, counting them and calling ``progress(count)`` every ``every`` rows."""

    def __init__(self, rows: Iterable, progress: Callable[[int], None] | None = None, every: int = 1000) -> None:
        self.rows, self.progress, self.every, self.count = rows, progress, max(1, every), 0

    def __iter__(self) -> Iterator:
        for row in self.rows:
            self.count += 1
            if self.progress is not None and self.count % self.every == 0:
                self.progress(self.count)
            yield row


def write_export(
    out: BinaryIO,
    export_format: str,
    *,
    header: Sequence[str],
    rows: Iterable[Sequence],
    statement: ExportStatement,
    chart: ChartSpec | None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1000,
) -> int:
    """Write ``rows`` in ``export_format`` (one of EXPORT_FORMATS) to ``out``; return how many."""
    counted = RowCounter(rows, progress, progress_every)
    if export_format == "csv":
        write_csv(out, header, counted, statement)
    elif export_format == "xlsx":
        xlsx.write_xlsx(out, header, counted, statement)
    elif export_format == "pdf":
        pdf.write_pdf(out, header, counted, statement, chart)
    else:
        raise ValueError(f"unknown export format {export_format!r}")
    return counted.count
