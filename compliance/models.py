"""The compliance reports' own records: export jobs, the large exports a worker makes (docs/compliance-reports.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ExportJob(models.Model):
    """One export made by a worker on the ``reports`` queue: who asked, for which organisation, report,
    format and filters; its progress; then the file in the ``compliance_exports`` storage with its
    SHA-256 and size, or the error that stopped it. A finished job's file is removed after
    ``COMPLIANCE_EXPORT_RETENTION_DAYS`` and the job marked expired.

    ``rows_ref`` and ``filters_ref`` name (``module:qualname``) the report's rows function and the
    parser that rebuilds its filters from ``query``, the filter values as the request gave them
    (compliance/exports/references.py)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    report = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    format = models.CharField(max_length=8)
    filters = models.JSONField(default=dict, help_text="The filters as the audit event records them.")
    query = models.JSONField(default=dict, help_text="The filter values as the request gave them.")
    header = models.JSONField(default=list)
    chart = models.JSONField(null=True, blank=True)
    rows_ref = models.CharField(max_length=200)
    filters_ref = models.CharField(max_length=200)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=500, blank=True)
    download_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="exportjob_org_created"),
            models.Index(fields=["state", "finished_at"], name="exportjob_state_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.report} {self.format} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED, self.State.EXPIRED)

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return min(99, self.rows_done * 100 // self.rows_total) if self.rows_total else 0
