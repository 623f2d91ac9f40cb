"""Tables as downloads: CSV streamed line by line, XLSX written to a temporary file, with every cell a
spreadsheet would run as a formula kept as text. Shared by the compliance reports and the trader's
reports; each caller supplies the header and the rows.

A spreadsheet reads a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a formula
(OWASP's CSV injection advice): such text is written with a leading single quote. Numbers stay numbers
in XLSX (a negative P&L is a number, not text).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from decimal import Decimal
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, StreamingHttpResponse

CSV_BATCH = 500  # CSV lines handed from the request's thread to the event loop at a time (ASGI)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_cell(value) -> str:
    """Return ``value`` as CSV text, quoted with a leading ``'`` if a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def xlsx_cell(value):
    """Return ``value`` for a worksheet: numbers stay numbers; text is guarded as in the CSV (openpyxl
    would store a string starting with ``=`` as a formula)."""
    if isinstance(value, bool) or value is None:
        return csv_cell(value)
    if isinstance(value, int | Decimal):
        return value
    return csv_cell(value)


class _Line:
    """A file-like object whose write returns the line: csv.writer then yields lines one by one."""

    def write(self, line: str) -> str:
        return line


def csv_lines(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV lines of ``header`` then ``rows``, each cell through ``csv_cell``."""
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


async def lines_async(lines: Iterator[str]) -> AsyncIterator[str]:
    """Hand ``lines`` over to the event loop in batches. The rows are read in the request's thread
    (thread-sensitive), which keeps the database connection and its server-side cursor."""
    take = sync_to_async(lambda: "".join(islice(lines, CSV_BATCH)), thread_sensitive=True)
    while chunk := await take():
        yield chunk


def csv_response(request: HttpRequest, lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    """Stream ``lines``. Under ASGI as an async iterator, under WSGI (and the test client) as the sync
    one: Django reads an iterator of the other kind into a list first, the whole export in memory."""
    content = lines_async(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def xlsx_response(header: Iterable[str], rows: Iterable[Iterable], filename: str, title: str) -> FileResponse:
    """Write the rows to a write-only workbook in a temporary file (openpyxl keeps no rows in memory)
    and send the file."""
    from openpyxl import Workbook  # type: ignore[import-untyped]  # openpyxl ships no types; its stubs are not installed

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])  # Excel's limit on a sheet name
    sheet.append(list(header))
    for row in rows:
        sheet.append([xlsx_cell(value) for value in row])
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (FileResponse closes it, and so deletes it, when sent)
    workbook.save(spool)
    spool.seek(0)
    response = FileResponse(spool, as_attachment=True, filename=filename, content_type=XLSX_TYPE)
    response["Cache-Control"] = "no-store"
    return response
