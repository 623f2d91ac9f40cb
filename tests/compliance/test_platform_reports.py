"""The platform's reports: every organisation, with an organisation column and filter, for platform
staff who hold compliance.view_reports; nobody else finds them."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import Organisation, User
from audit.models import AuditEvent
from audit.services import audit_record
from brokers.models import BrokerAccount
from compliance.selectors import IST
from orders.models import Order
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
PAGES = ("", "audit/", "trades/", "order-to-trade/", "algos/", "rms-rejections/", "kill-switch/", "logins/")


@pytest.fixture
def platform_officer(db) -> User:
    user = User.objects.create_user("platform-officer", is_staff=True)
    user.groups.add(Group.objects.get(name="Compliance officer"))
    return user


@pytest.fixture
def two_orgs(world):
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    ten = datetime.combine(timezone.localdate(timezone=IST), time(10), tzinfo=IST)
    for account in (world.account, theirs):
        order = Order.objects.create(
            account=account, instrument=world.equity, side="BUY", quantity=1, order_type="LIMIT", product="MIS",
            price=Decimal("1000"), margin_price=Decimal("1000"), source="strategy", algo_id="ALGO-1",
        )  # fmt: skip
        Order.objects.filter(pk=order.pk).update(created_at=ten)
    return other, theirs


def _csv(response) -> list[list[str]]:
    return csv_rows(b"".join(response.streaming_content))


def test_platform_staff_with_the_permission_read_every_organisation_and_filter_by_one(
    world, two_orgs, platform_officer, signed_in
):
    client = signed_in(platform_officer)
    for page in PAGES:
        assert client.get(f"/platform/compliance/{page}").status_code == 200, page
    rows = _csv(client.get("/platform/compliance/algos/export/"))
    assert sorted((row[1], row[2]) for row in rows[1:]) == [("acme", "P1"), ("other", "T1")]
    assert [(row[1], row[2]) for row in _csv(client.get("/platform/compliance/algos/export/?org=other"))[1:]] == [
        ("other", "T1")
    ]
    html = client.get("/platform/compliance/algos/").content.decode()
    assert "<th>Organisation</th>" in html and '<option value="other"' in html
    response = client.get("/platform/compliance/algos/?org=nowhere")
    assert response.status_code == 422 and 'data-code="org_not_found"' in response.content.decode()
    exported = AuditEvent.objects.filter(action="compliance.report_exported").last()
    assert exported.target_type == "" and exported.payload_data["filters"]["org"] == "other"
    response = client.get("/platform/compliance/audit/export/")
    assert response["Content-Disposition"].startswith('attachment; filename="platform-audit-log-')


def test_the_platform_audit_log_reaches_every_organisations_events(world, two_orgs, platform_officer, signed_in):
    stranger = User.objects.create_user("stranger")
    event = audit_record(actor=stranger, action="order.placed", target=two_orgs[1], payload={})
    html = signed_in(platform_officer).get("/platform/compliance/audit/").content.decode()
    assert f'id="event-{event.pk}"' in html
    # Filtered to acme, the event on the other organisation's account is gone.
    html = signed_in(platform_officer).get("/platform/compliance/audit/?org=acme").content.decode()
    assert f'id="event-{event.pk}"' not in html


def test_staff_without_the_permission_and_organisation_members_do_not_find_the_platform_reports(
    world, officer, signed_in
):
    staff = User.objects.create_user("plain-staff", is_staff=True)
    for user in (staff, world.owner, officer):
        client = signed_in(user)
        for page in PAGES:
            assert client.get(f"/platform/compliance/{page}").status_code == 404, (user, page)
        assert client.get("/platform/compliance/audit/export/").status_code == 404
    assert not AuditEvent.objects.filter(action="compliance.report_exported").exists()


def test_the_reports_landing_offers_the_platform_to_its_readers(world, platform_officer, signed_in):
    response = signed_in(platform_officer).get("/compliance/")
    assert response.status_code == 200 and 'href="/platform/compliance/"' in response.content.decode()


def test_the_platform_trade_trail_and_ratio_name_each_rows_organisation(world, platform_officer, signed_in):
    from orders.services import place_order

    Organisation.objects.create(name="Other", slug="other")
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(actor=world.trader, account=world.account, request=world.request(world.equity, order_type="MARKET"),
                source="web")  # fmt: skip
    client = signed_in(platform_officer)
    trades = _csv(client.get("/platform/compliance/trades/export/"))
    assert trades[0][0] == "organisation" and [row[:3] for row in trades[1:]] == [["acme", trades[1][1], "P1"]]
    assert _csv(client.get("/platform/compliance/trades/export/?org=other"))[1:] == []
    ratio = _csv(client.get("/platform/compliance/order-to-trade/export/"))
    assert ratio[0][:3] == ["organisation", "date_ist", "client_code"] and ratio[1][0] == "acme"
    html = client.get("/platform/compliance/trades/").content.decode()
    assert "<th>Organisation</th>" in html and "<td>Acme</td>" in html
