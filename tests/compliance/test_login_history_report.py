"""Login history: the organisation's members' sign-ins, failures and lockouts with their addresses. The
events are written through ``audit_record`` with the actors and payloads the sign-in paths use
(accounts/views.py, accounts/signals.py)."""

from __future__ import annotations

import pytest

from accounts.models import Membership, Organisation, Role, User
from audit.models import AuditEvent
from audit.services import audit_record
from compliance.reports.login_history import HEADER
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
URL = "/orgs/acme/compliance/logins/"
EXPORT = URL + "export/"


@pytest.fixture
def logins(world):
    other = Organisation.objects.create(name="Other", slug="other")
    stranger = User.objects.create_user("stranger")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    web = {"channel": "web", "factor": "SealedTOTPDevice"}
    return {
        "login": audit_record(
            actor=world.trader, action="auth.login", target=world.trader, payload=web, ip="203.0.113.7"
        ),
        "failed": audit_record(
            actor="anonymous",
            action="auth.login_failed",
            payload={"username": "trader", "channel": "web"},
            ip="198.51.100.9",
        ),
        "otp": audit_record(
            actor=world.viewer,
            action="auth.otp_failed",
            target=world.viewer,
            payload={"channel": "web"},
            ip="203.0.113.8",
        ),
        "lockout": audit_record(
            actor="anonymous",
            action="auth.lockout",
            payload={"username": "trader", "ip": "198.51.100.9"},
            ip="198.51.100.9",
        ),
        # Not acme's: another organisation's member, and a username nobody in acme has.
        "stranger": audit_record(actor=stranger, action="auth.login", target=stranger, payload=web, ip="192.0.2.1"),
        "typo": audit_record(
            actor="anonymous",
            action="auth.login_failed",
            payload={"username": "trader2", "channel": "web"},
            ip="192.0.2.2",
        ),
    }


def _rows(response) -> list[list[str]]:
    rows = csv_rows(b"".join(response.streaming_content))
    assert rows[0] == list(HEADER)
    return [row[1:6] for row in rows[1:]]


def test_the_organisations_sign_ins_failures_and_lockouts_with_their_addresses(world, logins, officer, signed_in):
    client = signed_in(officer)
    assert _rows(client.get(EXPORT)) == [
        ["lockout", "trader", "", "", "198.51.100.9"],
        ["otp_failed", "viewer", "web", "", "203.0.113.8"],
        ["login_failed", "trader", "web", "", "198.51.100.9"],
        ["login", "trader", "web", "SealedTOTPDevice", "203.0.113.7"],
    ]
    html = client.get(URL).content.decode()
    assert f'id="login-{logins["lockout"].pk}" class="event-lockout"' in html
    assert f'id="login-{logins["stranger"].pk}"' not in html and f'id="login-{logins["typo"].pk}"' not in html
    assert '<strong data-event="login_failed">1</strong>' in html


def test_the_username_event_and_address_filters(world, logins, signed_in):
    client = signed_in(world.owner)
    assert [r[0] for r in _rows(client.get(EXPORT + "?actor=trader"))] == ["lockout", "login_failed", "login"]
    assert [r[0] for r in _rows(client.get(EXPORT + "?event=lockout"))] == ["lockout"]
    assert [r[0] for r in _rows(client.get(EXPORT + "?ip=203.0.113.7"))] == ["login"]
    assert _rows(client.get(EXPORT + "?actor=stranger")) == []
    exports = [e.payload_data["filters"] for e in AuditEvent.objects.filter(action="compliance.report_exported")]
    assert [f.get("ip", "") for f in exports] == ["", "", "203.0.113.7", ""]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("event=logon", "event", "event_unknown"),
        ("ip=999.1.1.1", "ip", "ip_invalid"),
        ("to=yesterday", "to", "date_invalid"),
    ],
)
def test_malformed_filters_are_refused_with_422(world, signed_in, query, field, code):
    response = signed_in(world.owner).get(f"{URL}?{query}")
    assert response.status_code == 422
    assert f'id="filter-{field}-error" data-code="{code}"' in response.content.decode()
