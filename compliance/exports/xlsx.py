"""XLSX: the rows on the first worksheet (numbers as numbers, text guarded as in the CSV) and the
export's statement on a second worksheet, "About". openpyxl's write-only mode keeps no rows in memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from compliance.exports.statement import ExportStatement
from core.tabular import xlsx_cell

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_NAME_MAX = 31  # Excel's limit on a sheet name


def write_xlsx(out: BinaryIO, header: Iterable[str], rows: Iterable[Iterable], statement: ExportStatement) -> int:
    """Write the workbook to ``out``; return how many rows it holds."""
    from openpyxl import Workbook  # type: ignore[import-untyped]

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=statement.report.replace("_", " ")[:SHEET_NAME_MAX])
    sheet.append(list(header))
    count = 0
    for row in rows:
        sheet.append([xlsx_cell(value) for value in row])
        count += 1
    about = workbook.create_sheet(title="About")
    about.append(["Report", xlsx_cell(statement.title)])
    about.append(["Organisation", xlsx_cell(statement.organisation)])
    about.append(["Generated at", statement.generated_text()])
    about.append(["Rows", count])
    for name, value in statement.filter_lines():
        about.append([f"Filter: {name}", xlsx_cell(value)])
    workbook.save(out)
    return count
