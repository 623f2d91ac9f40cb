"""Cell values as the export formats write them, guarded against spreadsheet formula injection."""

from __future__ import annotations

from decimal import Decimal

# A spreadsheet reads a cell starting with one of these as a formula (tab and carriage return too, as
# OWASP advises): such a cell is written with a leading single quote, so it stays text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
