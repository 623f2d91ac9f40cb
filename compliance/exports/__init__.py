"""The compliance reports' exports: CSV, XLSX and PDF, each stating its filters and generation time
and carrying its SHA-256; small ones sent while the request waits, large ones made by a worker as
export jobs and kept in the ``compliance_exports`` storage. ``compliance.views._export`` is the entry
point every report's export view calls; docs/compliance-reports.md describes the formats."""
