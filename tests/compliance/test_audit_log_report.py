"""The audit-log browser: the organisation's events filtered by actor, action, target and day, paginated,
exported (CSV, XLSX) and audited, with the chain's latest verification and signed checkpoint."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone

from accounts.models import Membership, Organisation, Role, User
from audit.models import AuditEvent
from audit.services import audit_record, checkpoint_create
from brokers.models import BrokerAccount
from compliance.reports.audit_log import HEADER, audit_event_list
from compliance.selectors import IST
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
URL = "/orgs/acme/compliance/audit/"
EXPORT = URL + "export/"


def _today() -> str:
    return timezone.localdate(timezone=IST).isoformat()


@pytest.fixture
def trail(world):
    """Events of acme (by its members, on its account) and of another organisation, in a known order."""
    other = Organisation.objects.create(name="Other", slug="other")
    stranger = User.objects.create_user("stranger")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    start = AuditEvent.objects.count()
    events = {
        "placed": audit_record(
            actor=world.trader, action="order.placed", target=("orders.order", 999), payload={"n": 1}
        ),
        "login": audit_record(actor=world.viewer, action="auth.login", target=world.viewer, payload={"channel": "web"}),
        "system": audit_record(actor="system:rms", action="rms.limits_changed", target=world.account, payload={}),
        "theirs": audit_record(actor=stranger, action="order.placed", target=theirs, payload={"n": 2}),
        "their_login": audit_record(actor=stranger, action="auth.login", target=stranger, payload={"channel": "web"}),
    }
    assert AuditEvent.objects.count() == start + 5
    return events


def _ids(response) -> list[int]:
    rows = csv_rows(b"".join(response.streaming_content))
    assert rows[0] == list(HEADER)
    return [int(AuditEvent.objects.get(chain=row[1], seq=row[2]).pk) for row in rows[1:]]


def test_the_organisation_sees_its_members_and_its_accounts_events_and_not_another_organisations(
    world, trail, signed_in
):
    ours = {trail["placed"].pk, trail["login"].pk, trail["system"].pk}
    found = set(
        audit_event_list(
            organisation=world.org, date_from=timezone.localdate(), date_to=timezone.localdate()
        ).values_list("pk", flat=True)
    )
    assert ours <= found and not {trail["theirs"].pk, trail["their_login"].pk} & found
    html = signed_in(world.owner).get(URL).content.decode()
    for key in ("placed", "login", "system"):
        assert f'id="event-{trail[key].pk}"' in html
    assert f'id="event-{trail["theirs"].pk}"' not in html


def test_the_actor_action_and_target_filters_keep_exactly_the_matching_events(world, trail, signed_in):
    client = signed_in(world.owner)
    assert _ids(client.get(EXPORT + "?actor=trader")) == [trail["placed"].pk]
    assert _ids(client.get(EXPORT + f"?actor=user:{world.viewer.pk}")) == [trail["login"].pk]
    assert _ids(client.get(EXPORT + "?action=rms.limits_changed")) == [trail["system"].pk]
    auth = _ids(client.get(EXPORT + "?action=auth."))
    assert trail["login"].pk in auth and trail["their_login"].pk not in auth
    assert all(AuditEvent.objects.get(pk=pk).action.startswith("auth.") for pk in auth)
    target = f"brokers.brokeraccount:{world.account.pk}"
    assert _ids(client.get(EXPORT + f"?target={target}")) == [trail["system"].pk]
    assert _ids(client.get(EXPORT + "?actor=stranger")) == []  # another organisation's member


def test_the_export_is_newest_first_with_every_column_and_is_audited(world, trail, signed_in):
    response = signed_in(world.owner).get(EXPORT + "?actor=trader")
    assert response.status_code == 200
    assert f'filename="acme-audit-log-{_today()}-to-{_today()}.csv"' in response["Content-Disposition"]
    rows = csv_rows(b"".join(response.streaming_content))
    event = trail["placed"]
    assert rows[1][1:] == [
        str(event.chain), str(event.seq), event.actor, "trader", "order.placed", "orders.order", "999", "",
        event.request_id, '{"n":1}', event.hash,
    ]  # fmt: skip
    exported = AuditEvent.objects.filter(action="compliance.report_exported").get()
    assert exported.payload_data["report"] == "audit_log" and exported.payload_data["rows"] == 1
    assert exported.payload_data["filters"]["actor"] == "trader"


def test_an_empty_range_is_a_valid_empty_report_and_export(world, trail, signed_in):
    client = signed_in(world.owner)
    query = "?from=2001-01-01&to=2001-01-31"
    assert "No events match." in client.get(URL + query).content.decode()
    response = client.get(EXPORT + query)
    assert response.status_code == 200 and _ids(response) == []
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(b"".join(client.get(EXPORT + query + "&format=xlsx").streaming_content))).active
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [list(HEADER)]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("action=Order.Placed", "action", "action_invalid"),
        ("target=nonsense", "target", "target_invalid"),
        ("actor=" + "x" * 151, "actor", "text_too_long"),
        ("actor=a%01b", "actor", "text_invalid"),
        ("from=2025-02-30", "from", "date_invalid"),
        ("org=acme", None, None),  # not a filter of an organisation's page: ignored
    ],
)
def test_malformed_filters_are_refused_with_422_naming_the_field(world, signed_in, query, field, code):
    client = signed_in(world.owner)
    response = client.get(f"{URL}?{query}", HTTP_HX_REQUEST="true")
    if field is None:
        assert response.status_code == 200
        return
    html = response.content.decode()
    assert response.status_code == 422
    assert f'id="filter-{field}-error" data-code="{code}"' in html
    assert client.get(f"{EXPORT}?{query}").status_code == 422
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_the_page_shows_the_newest_checkpoint_and_verification_and_runs_one_on_request(
    world, trail, officer, signed_in
):
    from django.core.cache import cache

    from audit.tasks import VERIFY_LOCK
    from config.celery import app

    cache.delete(VERIFY_LOCK)  # the cache outlives tests (Redis): no verification left running by another
    client = signed_in(officer)
    html = client.get(URL).content.decode()
    assert "No checkpoint has been signed yet." in html and "Not verified from here yet" in html
    checkpoint = checkpoint_create(force=True)
    app.conf.task_always_eager = True
    try:
        response = client.post(URL + "verify/")
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302 and response["Location"] == URL
    verified = AuditEvent.objects.get(action="audit.verified")
    assert verified.payload_data["ok"] is True
    assert verified.payload_data["requested_by"] == f"user:{officer.pk}"
    html = client.get(URL).content.decode()
    assert 'data-ok="true"' in html and checkpoint.name in html and "Signature valid" in html


def test_a_nul_byte_in_a_filter_is_refused_before_the_report(world, signed_in):
    response = signed_in(world.owner).get(URL + "?actor=a%00b")
    assert response.status_code == 400 and b"nul_byte" in response.content


def test_a_second_verification_is_not_started_while_one_runs(world, officer, signed_in):
    from django.core.cache import cache

    from audit.tasks import VERIFY_LOCK

    cache.set(VERIFY_LOCK, "running", 60)
    try:
        response = signed_in(officer).post(URL + "verify/", follow=True)
        assert "A verification is already running" in response.content.decode()
        assert not AuditEvent.objects.filter(action="audit.verified").exists()
    finally:
        cache.delete(VERIFY_LOCK)
