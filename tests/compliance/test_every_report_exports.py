"""Every report, the organisation's and the platform's, offers CSV, XLSX and PDF; a Compliance member
exports and follows export jobs like an Owner; the platform's exports are made in the request and
state "All organisations"."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group

from accounts.models import User
from audit.services import audit_record
from compliance import tasks
from compliance.exports import jobs
from compliance.models import ExportJob
from tests.compliance.exporting import body, buy, csv_rows, csv_statement, sha256

pytestmark = pytest.mark.django_db
PAGES = ("audit/", "trades/", "order-to-trade/", "algos/", "rms-rejections/", "kill-switch/", "logins/")


@pytest.fixture
def platform_officer(db) -> User:
    user = User.objects.create_user("platform-officer", is_staff=True)
    user.groups.add(Group.objects.get(name="Compliance officer"))
    return user


@pytest.fixture
def export_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "compliance_exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "compliance_exports")},
        },
    }


@pytest.mark.parametrize("page", PAGES)
def test_each_organisation_report_offers_three_formats_to_a_compliance_member(world, officer, signed_in, page):
    buy(world)
    client = signed_in(officer)
    html = client.get(f"/orgs/acme/compliance/{page}").content.decode()
    export = f"/orgs/acme/compliance/{page}export/?"
    for link in ('id="report-export" href="' + export, "&amp;format=xlsx", "&amp;format=pdf"):
        assert link in html, link
    assert 'href="/orgs/acme/compliance/exports/"' in html
    xlsx = client.get(f"/orgs/acme/compliance/{page}export/", {"format": "xlsx"})
    pdf = client.get(f"/orgs/acme/compliance/{page}export/", {"format": "pdf"})
    assert xlsx.status_code == 200 and body(xlsx)[:2] == b"PK" and "Repr-Digest" in xlsx
    assert pdf.status_code == 200 and body(pdf)[:5] == b"%PDF-" and "Repr-Digest" in pdf


@pytest.mark.parametrize("page", PAGES)
def test_each_platform_report_offers_three_formats_made_in_the_request(
    world, platform_officer, signed_in, settings, page
):
    settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS = 0  # an organisation's export of any row would be a job
    buy(world)
    client = signed_in(platform_officer)
    html = client.get(f"/platform/compliance/{page}").content.decode()
    assert f'href="/platform/compliance/{page}export/?' in html and "&amp;format=pdf" in html
    assert "/compliance/exports/" not in html  # the export jobs are an organisation's
    for export_format in ("csv", "xlsx", "pdf"):
        response = client.get(f"/platform/compliance/{page}export/", {"format": export_format})
        assert response.status_code == 200, (export_format, response.content[:300])
        assert response["Content-Disposition"].startswith('attachment; filename="platform-')
    assert not ExportJob.objects.exists()


def test_a_platform_xlsx_and_pdf_state_all_organisations(world, platform_officer, signed_in):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    buy(world)
    client = signed_in(platform_officer)
    xlsx = body(client.get("/platform/compliance/trades/export/", {"format": "xlsx"}))
    about = dict(load_workbook(io.BytesIO(xlsx), read_only=True)["About"].iter_rows(values_only=True))
    assert about["Organisation"] == "All organisations" and about["Rows"] == 1
    pdf = body(client.get("/platform/compliance/order-to-trade/export/", {"format": "pdf", "org": "acme"}))
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "All organisations" in text and "Orders and trades per day" in text


def test_a_compliance_members_large_audit_log_export_is_a_job_the_worker_makes(
    world, officer, signed_in, settings, export_storage, monkeypatch
):
    settings.COMPLIANCE_EXPORT_INLINE_MAX_ROWS = 0
    monkeypatch.setattr(jobs, "send_job", lambda job_id: None)
    for n in range(3):
        audit_record(actor=world.owner, action="order.placed", target=world.account, payload={"n": n})
    client = signed_in(officer)
    response = client.get("/orgs/acme/compliance/audit/export/", {"action": "order.placed"})
    assert response.status_code == 303
    job = ExportJob.objects.get()
    assert job.rows_ref == "compliance.reports.audit_log:_rows" and job.requested_by == officer
    assert tasks.run_export(str(job.pk)) == "done"
    job.refresh_from_db()
    assert job.rows_done == 3
    assert f'id="export-{job.pk}"' in client.get("/orgs/acme/compliance/exports/").content.decode()
    data = body(client.get(f"/orgs/acme/compliance/exports/{job.pk}/download/"))
    assert sha256(data) == job.sha256 and [row[5] for row in csv_rows(data)[1:]].count("order.placed") == 3
    assert csv_statement(data)["action"] == "order.placed"
