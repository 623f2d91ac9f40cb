"""Prometheus metrics of the Kite app, exported from start-up (imported by KiteConfig.ready)."""

from __future__ import annotations

from prometheus_client import Counter

INSTRUMENT_IMPORT_FAILURE_REASONS = ("download", "malformed", "implausible", "error")

instrument_import_failures = Counter(
    "terminal_kite_instruments_import_failures",
    "Kite symbol-master imports refused or failed, the previous master kept, by reason: download (the "
    "file could not be fetched), malformed (a missing column, a row cut short), implausible (too few "
    "rows), error (anything else).",
    ["reason"],
)
for _reason in INSTRUMENT_IMPORT_FAILURE_REASONS:
    # Each series exists from start at 0, so the first failure is an increase Prometheus sees.
    instrument_import_failures.labels(_reason)
