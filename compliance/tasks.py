"""Compliance tasks (queue "reports"): large exports, and removing their files past retention.

``run_export`` is acknowledged late: a worker lost mid-export has the task redelivered, and the job,
left running past the time limit, runs again from the start (compliance.exports.jobs)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from compliance.errors import ExportJobNotQueued
from compliance.exports.jobs import export_job_expire, export_job_requeue_stale, export_job_run

EXPORT_TIME_LIMIT = settings.COMPLIANCE_EXPORT_TIME_LIMIT


@shared_task(
    acks_late=True, reject_on_worker_lost=True, time_limit=EXPORT_TIME_LIMIT, soft_time_limit=EXPORT_TIME_LIMIT - 30
)
def run_export(job_id: str) -> str:
    """Make the export job ``job_id``'s file; return its state, or ``skipped`` when it is not queued."""
    try:
        return export_job_run(job_id=job_id).state
    except ExportJobNotQueued:
        return "skipped"


@shared_task(acks_late=True, time_limit=600, soft_time_limit=570)
def expire_exports() -> int:
    """Remove the export files past ``COMPLIANCE_EXPORT_RETENTION_DAYS`` and send again the jobs whose
    message was lost; return how many jobs expired."""
    export_job_requeue_stale()
    return export_job_expire()
