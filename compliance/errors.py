"""Errors of the compliance reports."""

from __future__ import annotations

from core.errors import ApplicationError


class ReportFiltersInvalid(ApplicationError):
    """A report filter was refused. ``code`` and ``message`` name the first problem; ``extra["fields"]``
    maps every refused field (``from``, ``to``, ``account``, ``algo``, ``source``, and the fields of
    compliance/filters.py) to its ``{"code", "message"}`` (codes: ``date_invalid``, ``date_range_reversed``,
    ``date_range_too_long``, ``account_not_found``, ``algo_id_too_long``, ``algo_id_invalid``,
    ``source_unknown``, ``format_unknown``, ``text_too_long``, ``text_invalid``, ``action_invalid``,
    ``target_invalid``, ``rule_invalid``, ``event_unknown``, ``ip_invalid``, ``org_not_found``). A report
    page renders it beside its filters (compliance/views.py)."""

    code = "report_filters_invalid"
    status = 422


class ExportRefused(ApplicationError):
    """An export that cannot be made as asked: ``pdf_too_many_rows`` (a PDF over
    ``COMPLIANCE_EXPORT_PDF_MAX_ROWS`` rows; CSV and XLSX take any number)."""

    code = "export_refused"
    status = 422


class ExportNotReady(ApplicationError):
    """The export job's file is not there to download: still queued or running (409,
    ``export_not_ready``), failed (409, ``export_failed``) or removed after its retention (410,
    ``export_expired``)."""

    code = "export_not_ready"
    status = 409


class ExportExpired(ExportNotReady):
    code = "export_expired"
    status = 410


class ExportJobNotQueued(ApplicationError):
    """A worker was handed a job that is not waiting to run (done, failed, or running elsewhere)."""

    code = "export_job_not_queued"
    status = 409
