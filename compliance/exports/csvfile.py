"""CSV: RFC 4180 text in UTF-8, a header row then one line per row, nothing else, so any CSV reader
takes it as it is. Cells a spreadsheet would run are guarded (``core.tabular.csv_cell``)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import BinaryIO

from core.tabular import csv_cell

WRITE_BATCH = 1000  # lines joined per write


class _Line:
    """A file-like object whose write returns the line: csv.writer then yields lines one by one."""

    def write(self, line: str) -> str:
        return line


def csv_lines(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The header line, then a line per row."""
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def write_csv(out: BinaryIO, header: Iterable[str], rows: Iterable[Iterable]) -> None:
    """Write the CSV of ``rows`` to the binary file ``out``."""
    lines = csv_lines(header, rows)
    while batch := "".join(islice(lines, WRITE_BATCH)):
        out.write(batch.encode("utf-8"))
