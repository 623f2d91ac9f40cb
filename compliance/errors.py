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
