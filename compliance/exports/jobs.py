"""Export jobs: a large export made by a worker on the ``reports`` queue and kept in the
``compliance_exports`` storage (django-storages: the filesystem under var/, or S3).

``export_job_create`` records the job and its audit event and queues ``compliance.tasks.run_export``
after commit; ``export_job_run`` (the task) reads the rows through the report's own functions, writes
the file to a temporary file while updating the job's progress, hashes it, stores it and records the
SHA-256, size and rows; ``export_job_expire`` (beat) removes files past their retention."""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import DatabaseError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organisation
from audit.services import audit_record
from compliance.errors import ExportExpired, ExportJobNotQueued, ExportNotReady
from compliance.exports.chart import ChartSpec
from compliance.exports.digest import file_sha256
from compliance.exports.formats import write_export
from compliance.exports.references import resolve
from compliance.exports.statement import ExportStatement
from compliance.models import ExportJob
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "compliance_exports"
SYSTEM_ACTOR = "system:compliance"
PROGRESS_STEPS = 100  # progress is written about this many times over a job,
PROGRESS_MIN_ROWS = 1000  # and at most once every this many rows
REQUEUE_AFTER = timedelta(minutes=15)  # a job still queued this long lost its message: it is sent again


def export_storage() -> Storage:
    return storages[STORAGE_ALIAS]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What a report's export asks for, as a job records it."""

    report: str
    title: str
    export_format: str
    filters: dict
    query: dict
    header: list[str]
    chart: ChartSpec | None
    rows_ref: str
    filters_ref: str
    rows_total: int
    download_name: str


RUN_EXPORT_TASK = "compliance.tasks.run_export"  # sent by name: the tasks module imports this one


def send_job(job_id: str) -> None:
    """Queue the job's task (routed to the reports queue by its name)."""
    current_app.send_task(RUN_EXPORT_TASK, args=[job_id])


def export_job_create(*, actor, organisation: Organisation, request: ExportRequest, ip: str | None) -> ExportJob:
    """Record a queued job and its ``compliance.report_exported`` audit event in one transaction, and
    queue its task once that commits; return the job."""
    with transaction.atomic():
        job = ExportJob.objects.create(
            organisation=organisation,
            requested_by=actor,
            report=request.report,
            title=request.title,
            format=request.export_format,
            filters=request.filters,
            query=request.query,
            header=list(request.header),
            chart=request.chart.as_dict() if request.chart else None,
            rows_ref=request.rows_ref,
            filters_ref=request.filters_ref,
            rows_total=request.rows_total,
            download_name=request.download_name,
        )
        audit_record(
            actor=actor,
            action="compliance.report_exported",
            target=organisation,
            payload={
                "report": request.report,
                "format": request.export_format,
                "filters": request.filters,
                "rows": request.rows_total,
                "job": str(job.pk),
            },
            ip=ip,
        )
        job_id = str(job.pk)
        transaction.on_commit(lambda: send_job(job_id))
    return job


def _claim(job_id: UUID | str, now: datetime) -> None:
    """Mark the job running, if it is queued or was left running by a worker lost past the time limit."""
    abandoned = Q(
        state=ExportJob.State.RUNNING,
        started_at__lt=now - timedelta(seconds=settings.COMPLIANCE_EXPORT_TIME_LIMIT + 30),
    )
    claimed = ExportJob.objects.filter(Q(state=ExportJob.State.QUEUED) | abandoned, pk=job_id).update(
        state=ExportJob.State.RUNNING, started_at=now, rows_done=0
    )
    if not claimed:
        raise ExportJobNotQueued("This export job is not waiting to run.", extra={"job": str(job_id)})


def export_job_run(*, job_id: UUID | str) -> ExportJob:
    """Make the job's file; return the job, done or failed (its error then says why).

    Raises ExportJobNotQueued for a job that is not queued (it runs once), unless a worker lost it
    running past ``COMPLIANCE_EXPORT_TIME_LIMIT``: then it runs again from the start."""
    now = timezone.now()
    _claim(job_id, now)
    job = ExportJob.objects.select_related("organisation").get(pk=job_id)
    try:
        stored = _make(job, now)
    except ApplicationError as exc:  # the filters no longer hold (an account deleted since, say)
        return _fail(job, exc.message)
    except Exception as exc:
        logger.exception("export job failed", extra={"job": str(job.pk)})
        return _fail(job, f"The export could not be written ({type(exc).__name__}).")
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.RUNNING).update(
            state=ExportJob.State.DONE, finished_at=timezone.now(), **stored
        )
        job.refresh_from_db()
        audit_record(
            actor=SYSTEM_ACTOR,
            action="compliance.report_export_finished",
            target=job.organisation,
            payload={
                "job": str(job.pk),
                "report": job.report,
                "format": job.format,
                "rows": job.rows_done,
                "bytes": job.size,
                "sha256": job.sha256,
                "file": job.file_name,
            },
        )
    return job


def _make(job: ExportJob, generated_at: datetime) -> dict:
    """Write, hash and store the job's file; return the job's fields that record it."""
    organisation = job.organisation
    filters = resolve(job.filters_ref)(job.query, organisation)
    count, rows = resolve(job.rows_ref)(filters, organisation)
    ExportJob.objects.filter(pk=job.pk).update(rows_total=count)
    every = max(PROGRESS_MIN_ROWS, count // PROGRESS_STEPS)
    statement = ExportStatement(
        title=job.title,
        organisation=organisation.name,
        report=job.report,
        filters=job.filters,
        generated_at=generated_at,
    )
    with tempfile.TemporaryFile() as spool, _ProgressWriter(job.pk) as progress:
        written = write_export(
            spool,
            job.format,
            header=job.header,
            rows=rows,
            statement=statement,
            chart=ChartSpec.from_dict(job.chart) if job.chart else None,
            progress=progress,
            progress_every=every,
        )
        sha256, size = file_sha256(spool)
        name = export_storage().save(f"{organisation.slug}/{job.pk}/{job.download_name}", File(spool))
    return {"rows_done": written, "rows_total": written, "file_name": name, "sha256": sha256, "size": size}


def record_progress(job_id: UUID | str, done: int) -> None:
    """Write how many rows the running job has written (its page polls it)."""
    ExportJob.objects.filter(pk=job_id, state=ExportJob.State.RUNNING).update(rows_done=done)


class _ProgressWriter:
    """Writes a running job's progress from a thread of its own, and so on a database connection of its
    own: the export's read stays open meanwhile (a server-side cursor on PostgreSQL; on SQLite a read
    snapshot, which a write on the same connection cannot follow once another connection has committed,
    as the feed's candle writer does every minute). Progress is best-effort: a write that fails is
    logged and the export goes on."""

    def __init__(self, job_id: UUID | str) -> None:
        self.job_id = job_id
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-progress")

    def __call__(self, done: int) -> None:
        self._thread.submit(self._write, done)

    def _write(self, done: int) -> None:
        try:
            record_progress(self.job_id, done)
        except DatabaseError:
            logger.warning("export progress not written", extra={"job": str(self.job_id)}, exc_info=True)

    def __enter__(self) -> _ProgressWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.submit(connections.close_all)  # the thread's own connection
        self._thread.shutdown(wait=True)


def _fail(job: ExportJob, error: str) -> ExportJob:
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.RUNNING).update(
            state=ExportJob.State.FAILED, finished_at=timezone.now(), error=error
        )
        job.refresh_from_db()
        audit_record(
            actor=SYSTEM_ACTOR,
            action="compliance.report_export_failed",
            target=job.organisation,
            payload={"job": str(job.pk), "report": job.report, "format": job.format, "error": error},
        )
    return job


def export_job_expire(*, now: datetime | None = None) -> int:
    """Remove the files of jobs finished more than ``COMPLIANCE_EXPORT_RETENTION_DAYS`` ago and mark
    them expired (failed ones too, which have none); return how many jobs expired."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.COMPLIANCE_EXPORT_RETENTION_DAYS)
    due = ExportJob.objects.filter(
        state__in=(ExportJob.State.DONE, ExportJob.State.FAILED), finished_at__lt=cutoff
    ).select_related("organisation")
    storage, expired = export_storage(), 0
    for job in due.iterator():
        if job.file_name:
            storage.delete(job.file_name)  # deleting a file already gone is not an error
        with transaction.atomic():
            if not ExportJob.objects.filter(pk=job.pk, state=job.state).update(
                state=ExportJob.State.EXPIRED, file_name=""
            ):
                continue
            audit_record(
                actor=SYSTEM_ACTOR,
                action="compliance.report_export_expired",
                target=job.organisation,
                payload={"job": str(job.pk), "file": job.file_name},
            )
        expired += 1
    return expired


@dataclass(frozen=True, slots=True)
class OpenedExport:
    """A finished job's file to send: open from the storage, or a presigned URL to redirect to."""

    file: File | None = None
    url: str = ""


def export_job_open(*, job: ExportJob) -> OpenedExport:
    """Open the finished job's file, or, from S3 with ``COMPLIANCE_EXPORT_PRESIGNED_SECONDS`` set, sign a
    URL for it that names the download and expires. Raises ExportNotReady: 409 ``export_not_ready``
    while it runs, 409 ``export_failed``, 410 ``export_expired`` once removed or gone from the storage."""
    if job.state in (ExportJob.State.QUEUED, ExportJob.State.RUNNING):
        raise ExportNotReady("This export is still being made; its page shows its progress.")
    if job.state == ExportJob.State.FAILED:
        raise ExportNotReady(f"This export failed: {job.error}", code="export_failed")
    expired = ExportExpired(
        f"This export's file was removed {settings.COMPLIANCE_EXPORT_RETENTION_DAYS} days after it was made; "
        "export the report again."
    )
    storage = export_storage()
    if job.state == ExportJob.State.EXPIRED or not job.file_name or not storage.exists(job.file_name):
        raise expired
    if settings.COMPLIANCE_EXPORT_PRESIGNED_SECONDS and _is_s3(storage):
        disposition = f'attachment; filename="{job.download_name}"'
        url = storage.url(  # type: ignore[call-arg]
            job.file_name,
            parameters={"ResponseContentDisposition": disposition},
            expire=settings.COMPLIANCE_EXPORT_PRESIGNED_SECONDS,
        )
        return OpenedExport(url=url)
    return OpenedExport(file=storage.open(job.file_name, "rb"))


def _is_s3(storage: Storage) -> bool:
    from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

    return isinstance(storage, S3Storage)


def export_job_requeue_stale(*, now: datetime | None = None) -> int:
    """Send again the jobs still queued ``REQUEUE_AFTER`` after they were created (their message was
    lost: the broker was down when the request committed, say); return how many. A job runs once
    however many messages reach the workers."""
    stale = ExportJob.objects.filter(
        state=ExportJob.State.QUEUED, created_at__lt=(now or timezone.now()) - REQUEUE_AFTER
    )
    job_ids = [str(pk) for pk in stale.values_list("pk", flat=True)]
    for job_id in job_ids:
        send_job(job_id)
    return len(job_ids)
