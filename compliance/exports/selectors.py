"""Reads of export jobs: an organisation's, newest first, and one by id within it."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from accounts.models import Organisation
from compliance.models import ExportJob

JOB_LIST_LIMIT = 50


def export_job_list(*, organisation: Organisation) -> QuerySet[ExportJob]:
    """The organisation's most recent export jobs, newest first, with who asked."""
    return ExportJob.objects.filter(organisation=organisation).select_related("requested_by")[:JOB_LIST_LIMIT]


def export_job_get(*, organisation: Organisation, job_id: UUID) -> ExportJob | None:
    """The organisation's job ``job_id``, or None (none such, or another organisation's)."""
    return ExportJob.objects.filter(organisation=organisation, pk=job_id).select_related("requested_by").first()
