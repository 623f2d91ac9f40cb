"""CSV: RFC 4180 text in UTF-8. First the export's statement as comment lines, each starting with
``# `` (the report, the organisation, one line per filter, the generation time), then the header row,
then one line per row. A reader that skips lines starting with ``#`` (``pandas.read_csv(comment="#")``,
``grep -v '^#'``) reads exactly the header and the rows: a row with a ``#`` in a cell has every cell
quoted, since a comment-aware reader ends a line at an unquoted ``#``, and a line of a multi-line cell
that would start with ``#`` starts with ``'#``, so no line of the data is taken for a comment.

A statement's text cannot leave its comment line: every line break or other control character in it
is written as a space. A comment line is one text cell to a spreadsheet up to its first comma; a piece
after a comma that a spreadsheet would run as a formula, or read as the start of a quoted cell, gets the
leading ``'`` a data cell gets. Data cells are guarded by ``core.tabular.csv_cell``."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import BinaryIO

from compliance.exports.statement import ExportStatement
from core.tabular import FORMULA_STARTS, csv_cell

WRITE_BATCH = 1000  # lines joined per write
COMMENT = "# "
LINE_END = "\r\n"  # as csv.writer ends its rows (RFC 4180)
_LINE_STARTING_HASH = re.compile(r"([\r\n])#")  # a line of a multi-line cell that starts with "#"


class _Line:
    """A file-like object whose write returns the line: csv.writer then yields lines one by one."""

    def write(self, line: str) -> str:
        return line


def _one_line(text: str) -> str:
    """``text`` with every control character (line feed, carriage return, tab, NUL, ...) and Unicode
    line or paragraph separator as a space: what ``str.splitlines`` or any CSV reader would break on."""
    return "".join(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in text)


def _comment_piece(piece: str) -> str:
    return "'" + piece if piece.lstrip(" ").startswith((*FORMULA_STARTS, '"')) else piece


def comment_line(text: str) -> str:
    """``text`` as one comment line (ending in CRLF), guarded as the module docstring says."""
    first, *rest = _one_line(text).split(",")
    return COMMENT + ",".join([first, *(_comment_piece(piece) for piece in rest)]) + LINE_END


def preamble_lines(statement: ExportStatement) -> list[str]:
    """The statement of the export as comment lines."""
    texts = [f"Report: {statement.title}", f"Organisation: {statement.organisation}"]
    texts += [f"{name}: {value}" for name, value in statement.filter_lines()]
    texts.append(f"Generated: {statement.generated_text()}")
    return [comment_line(text) for text in texts]


def csv_lines(header: Iterable[str], rows: Iterable[Iterable], statement: ExportStatement) -> Iterator[str]:
    """The statement's comment lines, the header line, then a line per row."""
    yield from preamble_lines(statement)
    writer, quoting = csv.writer(_Line()), csv.writer(_Line(), quoting=csv.QUOTE_ALL)
    for cells in chain([[str(name) for name in header]], ([csv_cell(value) for value in row] for row in rows)):
        if any("#" in cell for cell in cells):
            yield quoting.writerow([_LINE_STARTING_HASH.sub(r"\1'#", cell) for cell in cells])
        else:
            yield writer.writerow(cells)


def write_csv(out: BinaryIO, header: Iterable[str], rows: Iterable[Iterable], statement: ExportStatement) -> None:
    """Write the CSV of ``rows``, stated by ``statement``, to the binary file ``out``."""
    lines = csv_lines(header, rows, statement)
    while batch := "".join(islice(lines, WRITE_BATCH)):
        out.write(batch.encode("utf-8"))
