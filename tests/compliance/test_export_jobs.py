"""Large exports become jobs for a worker on the reports queue: the request answers at once with the
job's page, which shows progress (polled by HTMX) and then a download link; the file is kept in the
compliance_exports storage (the filesystem, or S3) with its SHA-256 and size, downloaded with the
caller's access checked again, and removed after its retention."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, timedelta

import httpx
import pytest
from django.core.files.storage import storages
from django.utils import timezone

from accounts.models import Membership, Organisation, Role
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance import tasks
from compliance.exports import jobs
from compliance.models import ExportJob
from compliance.views import TRADE_TRAIL_HEADER
from config.celery import app as celery_app
from tests.compliance.exporting import EXPORT, body, buy, csv_rows, csv_statement, more_trades, sha256

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def export_storage(settings, tmp_path):
    """Each test gets its own, empty export storage; exports of one row or more are jobs."""
    settings.STORAGES = {
        **settings.STORAGES,
        "compliance_exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "compliance_exports")},
        },
    }
    settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS = 0
    return tmp_path / "compliance_exports"


@pytest.fixture
def queued(monkeypatch):
    """The job ids sent to the reports queue (the test runs them)."""
    sent: list[str] = []
    monkeypatch.setattr(jobs, "send_job", sent.append)
    return sent


def _start(client, params=None) -> ExportJob:
    response = client.get(EXPORT, params or {})
    assert response.status_code == 303, response.content[:500]
    job = ExportJob.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[1])
    assert response["Location"] == f"/orgs/acme/compliance/exports/{job.pk}/"
    return job


def test_a_large_export_is_queued_as_a_job_and_the_request_answers_at_once(
    world, signed_in, queued, django_capture_on_commit_callbacks
):
    more_trades(buy(world), 10)
    with django_capture_on_commit_callbacks(execute=True):
        job = _start(signed_in(world.owner), {"source": "web"})
    assert queued == [str(job.pk)]
    assert job.state == "queued" and job.rows_total == 11 and job.format == "csv" and job.requested_by == world.owner
    assert job.filters["source"] == "web" and job.header == list(TRADE_TRAIL_HEADER)
    event = AuditEvent.objects.get(action="compliance.report_exported")
    assert event.payload_data["job"] == str(job.pk) and event.payload_data["rows"] == 11
    assert celery_app.amqp.router.route({}, "compliance.tasks.run_export")["queue"].name == "reports"


def test_a_range_over_the_day_limit_is_a_job_whatever_its_rows(world, signed_in, settings, queued):
    settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS = 1000
    settings.COMPLIANCE_EXPORT_INLINE_MAX_DAYS = 2
    client = signed_in(world.owner)
    assert client.get(EXPORT, {"from": "2026-01-01", "to": "2026-01-02"}).status_code == 200
    assert client.get(EXPORT, {"from": "2026-01-01", "to": "2026-01-03"}).status_code == 303


@pytest.mark.django_db(transaction=True)  # the progress is written on a connection of its own
def test_the_worker_writes_the_file_with_progress_then_the_page_offers_it(world, signed_in, queued, monkeypatch):
    first = buy(world)
    more_trades(first, 40)
    client = signed_in(world.admin)
    job = _start(client)
    page = client.get(f"/orgs/acme/compliance/exports/{job.pk}/").content.decode()
    assert 'id="export-state"' in page and "Queued" in page and 'hx-trigger="every 2s"' in page

    seen: list[tuple[int, str]] = []
    original = jobs.record_progress

    def record(job_id, done):
        original(job_id, done)
        fresh = ExportJob.objects.get(pk=job_id)
        seen.append((fresh.rows_done, client.get(f"/orgs/acme/compliance/exports/{job_id}/", **HX).content.decode()))

    monkeypatch.setattr(jobs, "record_progress", record)
    monkeypatch.setattr(jobs, "PROGRESS_MIN_ROWS", 10)
    assert tasks.run_export(str(job.pk)) == "done"
    assert [done for done, _ in seen] == [10, 20, 30, 40]
    assert '<progress id="export-progress" max="41" value="20">' in seen[1][1] and "20 of 41 rows" in seen[1][1]
    assert 'hx-trigger="every 2s"' in seen[1][1]  # still polling while it runs

    job.refresh_from_db()
    assert job.state == "done" and job.rows_done == 41 and job.file_name.startswith(f"acme/{job.pk}/")
    stored = storages["compliance_exports"].open(job.file_name).read()
    assert sha256(stored) == job.sha256 and len(stored) == job.size
    rows = csv_rows(stored)
    assert rows[0] == list(TRADE_TRAIL_HEADER) and len(rows) == 42
    statement = csv_statement(stored)  # the job's statement, in comment lines before the header
    assert list(statement) == ["Report", "Organisation", "from", "to", "account", "algo_id", "source", "Generated"]
    assert statement["Report"] == "Trade trail" and statement["Organisation"] == "Acme"
    assert statement["from"] == job.filters["from"] and statement["to"] == job.filters["to"]
    assert statement["account"] == statement["algo_id"] == statement["source"] == "any"
    started = job.started_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    assert statement["Generated"].endswith(f" IST ({started})")
    finished = AuditEvent.objects.get(action="compliance.report_export_finished")
    assert finished.payload_data["sha256"] == job.sha256 and finished.payload_data["rows"] == 41

    fragment = client.get(f"/orgs/acme/compliance/exports/{job.pk}/", **HX).content.decode()
    assert "hx-trigger" not in fragment and job.sha256 in fragment
    assert f'href="/orgs/acme/compliance/exports/{job.pk}/download/"' in fragment
    download = client.get(f"/orgs/acme/compliance/exports/{job.pk}/download/", REMOTE_ADDR="10.0.0.9")
    data = body(download)
    assert (
        data == stored
        and download["Repr-Digest"] == "sha-256=:" + base64.b64encode(bytes.fromhex(job.sha256)).decode() + ":"
    )
    assert download["Content-Disposition"] == f'attachment; filename="{job.download_name}"'
    event = AuditEvent.objects.get(action="compliance.report_export_downloaded")
    assert event.payload_data["sha256"] == job.sha256 and event.ip == "10.0.0.9"
    listing = client.get("/orgs/acme/compliance/exports/").content.decode()
    assert f'id="export-{job.pk}"' in listing and "Done" in listing


@pytest.mark.parametrize("export_format", ["xlsx", "pdf"])
def test_xlsx_and_pdf_jobs_hold_the_rows_and_their_statement(world, signed_in, queued, export_format):
    import io

    from openpyxl import load_workbook
    from pypdf import PdfReader

    more_trades(buy(world), 25)
    client = signed_in(world.owner)
    job = _start(client, {"format": export_format})
    tasks.run_export(str(job.pk))
    job.refresh_from_db()
    data = body(client.get(f"/orgs/acme/compliance/exports/{job.pk}/download/"))
    assert sha256(data) == job.sha256 and job.download_name.endswith("." + export_format)
    if export_format == "xlsx":
        workbook = load_workbook(io.BytesIO(data), read_only=True)
        assert len(list(workbook["trade trail"].iter_rows())) == 27
        assert dict(workbook["About"].iter_rows(values_only=True))["Rows"] == 26
    else:
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
        assert text.splitlines().count("RELIANCE") == 26 and "Rows per day" in text


def test_a_job_whose_filters_no_longer_hold_fails_with_the_reason(world, signed_in, queued):
    second = BrokerAccount.objects.create(organisation=world.org, label="Second", broker="paper", client_code="P2")
    buy(world, account=second)
    client = signed_in(world.owner)
    job = _start(client, {"account": second.pk})
    ExportJob.objects.filter(pk=job.pk).update(query={**job.query, "account": "999999"})
    assert tasks.run_export(str(job.pk)) == "failed"
    job.refresh_from_db()
    assert job.error == "Account must be one of the organisation's broker accounts."
    assert AuditEvent.objects.get(action="compliance.report_export_failed").payload_data["error"] == job.error
    response = client.get(f"/orgs/acme/compliance/exports/{job.pk}/download/")
    assert response.status_code == 409 and b'data-code="export_failed"' in response.content
    assert tasks.run_export(str(job.pk)) == "skipped"  # it runs once


def test_a_job_not_yet_done_cannot_be_downloaded(world, signed_in, queued):
    buy(world)
    client = signed_in(world.owner)
    job = _start(client)
    response = client.get(f"/orgs/acme/compliance/exports/{job.pk}/download/")
    assert response.status_code == 409 and b'data-code="export_not_ready"' in response.content
    assert not AuditEvent.objects.filter(action="compliance.report_export_downloaded").exists()


def test_a_job_left_running_by_a_lost_worker_runs_again_after_the_time_limit(world, signed_in, queued, settings):
    buy(world)
    job = _start(signed_in(world.owner))
    ExportJob.objects.filter(pk=job.pk).update(state="running", started_at=timezone.now())
    assert tasks.run_export(str(job.pk)) == "skipped"  # running elsewhere
    long_ago = timezone.now() - timedelta(seconds=settings.COMPLIANCE_EXPORT_TIME_LIMIT + 60)
    ExportJob.objects.filter(pk=job.pk).update(started_at=long_ago)
    assert tasks.run_export(str(job.pk)) == "done"


def test_files_past_their_retention_are_removed_and_the_job_expires(world, signed_in, queued, settings):
    settings.COMPLIANCE_EXPORT_RETENTION_DAYS = 7
    buy(world)
    client = signed_in(world.owner)
    old = _start(client)
    tasks.run_export(str(old.pk))
    old.refresh_from_db()
    recent = _start(client, {"format": "xlsx"})
    tasks.run_export(str(recent.pk))
    ExportJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=8))
    storage = storages["compliance_exports"]
    assert storage.exists(old.file_name)
    assert tasks.expire_exports() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.state == "expired" and old.file_name == "" and recent.state == "done"
    assert not storage.exists(f"acme/{old.pk}/{old.download_name}") and storage.exists(recent.file_name)
    response = client.get(f"/orgs/acme/compliance/exports/{old.pk}/download/")
    assert response.status_code == 410 and b'data-code="export_expired"' in response.content
    assert AuditEvent.objects.get(action="compliance.report_export_expired").payload_data["job"] == str(old.pk)
    assert tasks.expire_exports() == 0


@pytest.mark.parametrize(("who", "status"), [("trader", 403), ("viewer", 403), ("outsider", 404)])
def test_job_pages_and_downloads_check_access_again(world, signed_in, django_user_model, queued, who, status):
    buy(world)
    job = _start(signed_in(world.owner))
    tasks.run_export(str(job.pk))
    job.refresh_from_db()
    assert job.sha256
    if who == "outsider":
        user = django_user_model.objects.create_user("stranger")
        other = Organisation.objects.create(name="Other", slug="other")
        Membership.objects.create(user=user, organisation=other, role=Role.OWNER)
    else:
        user = getattr(world, who)
    client = signed_in(user)
    for url in (
        "/orgs/acme/compliance/exports/",
        f"/orgs/acme/compliance/exports/{job.pk}/",
        f"/orgs/acme/compliance/exports/{job.pk}/download/",
    ):
        response = client.get(url)
        assert response.status_code == status and not response.streaming, url
        assert job.sha256 not in response.content.decode()
    assert not AuditEvent.objects.filter(action="compliance.report_export_downloaded").exists()


def test_a_job_of_another_organisation_or_none_is_a_404(world, signed_in, django_user_model, queued):
    buy(world)
    job = _start(signed_in(world.owner))
    tasks.run_export(str(job.pk))
    stranger = django_user_model.objects.create_user("stranger")
    other = Organisation.objects.create(name="Other", slug="other")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    client = signed_in(stranger)
    for url in (f"/orgs/other/compliance/exports/{job.pk}/", f"/orgs/other/compliance/exports/{job.pk}/download/"):
        response = client.get(url)
        assert response.status_code == 404 and b'data-code="export_not_found"' in response.content
    owner = signed_in(world.owner)
    assert owner.get(f"/orgs/acme/compliance/exports/{uuid.uuid4()}/").status_code == 404
    assert owner.get("/orgs/acme/compliance/exports/not-a-uuid/").status_code == 404
    assert owner.get("/orgs/acme/compliance/exports/99999999999999999999999/download/").status_code == 404


@pytest.fixture
def s3_exports(aws, settings):
    """The export storage on the local S3 server (moto's server mode on loopback)."""
    aws.client("s3").create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": aws.region})
    settings.STORAGES = {
        **settings.STORAGES,
        "compliance_exports": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "exports",
                "location": "compliance-exports",
                "endpoint_url": aws.endpoint_url,
                "region_name": aws.region,
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    return aws


@pytest.mark.parametrize("presigned_seconds", [60, 0])
def test_on_s3_the_job_writes_the_object_and_the_download_returns_the_same_bytes_and_hash(
    world, signed_in, queued, s3_exports, settings, presigned_seconds
):
    settings.COMPLIANCE_EXPORT_PRESIGNED_SECONDS = presigned_seconds
    more_trades(buy(world), 15)
    client = signed_in(world.owner)
    job = _start(client, {"format": "xlsx"})
    assert tasks.run_export(str(job.pk)) == "done"
    job.refresh_from_db()
    listed = s3_exports.client("s3").list_objects_v2(Bucket="exports")["Contents"]
    assert [item["Key"] for item in listed] == [f"compliance-exports/{job.file_name}"]
    stored = s3_exports.client("s3").get_object(Bucket="exports", Key=listed[0]["Key"])["Body"].read()
    assert sha256(stored) == job.sha256 and len(stored) == job.size
    response = client.get(f"/orgs/acme/compliance/exports/{job.pk}/download/")
    if presigned_seconds:
        assert response.status_code == 302 and response["Location"].startswith(s3_exports.endpoint_url)
        assert "X-Amz-Expires=60" in response["Location"]
        fetched = httpx.get(response["Location"], timeout=10)
        assert (
            fetched.status_code == 200 and f'filename="{job.download_name}"' in fetched.headers["content-disposition"]
        )
        data = fetched.content
    else:
        data = body(response)
        assert response.status_code == 200 and response["Repr-Digest"].startswith("sha-256=:")
    assert data == stored and sha256(data) == job.sha256


def test_a_job_whose_message_was_lost_is_sent_again_by_the_hourly_task(world, signed_in, queued):
    buy(world)
    job = _start(signed_in(world.owner))
    tasks.expire_exports()
    assert queued == []  # (the request's own message goes on commit, which this test never reaches)
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    tasks.expire_exports()
    assert queued == [str(job.pk)]
    assert tasks.run_export(str(job.pk)) == "done" and tasks.run_export(str(job.pk)) == "skipped"


def test_a_worker_resolves_only_module_level_functions_of_the_compliance_app():
    from compliance import views
    from compliance.exports.references import UnresolvableReference, reference, resolve

    assert reference(views._trade_trail_rows) == "compliance.views:_trade_trail_rows"
    assert resolve("compliance.views:_trade_trail_rows") is views._trade_trail_rows
    assert reference(lambda filters, organisation: (0, [])) is None  # exported at once, however large
    assert reference(sha256) is None  # outside the compliance app
    for text in ("os:system", "compliance.views:nothing", "compliance.views:EXACT", "compliance.nowhere:x", ":", ""):
        with pytest.raises(UnresolvableReference):
            resolve(text)
