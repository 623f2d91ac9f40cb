"""Kill-switch events: every switch over the organisation engaged or lifted, by whom and why."""

from __future__ import annotations

import pytest

from accounts.models import Organisation
from brokers.models import BrokerAccount
from compliance.reports.kill_switch import HEADER
from orders.services import kill_switch_engage
from rms.services import kill_switch_release
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
URL = "/orgs/acme/compliance/kill-switch/"
EXPORT = URL + "export/"


def _rows(response) -> list[list[str]]:
    rows = csv_rows(b"".join(response.streaming_content))
    assert rows[0] == list(HEADER)
    return [[row[1], row[2], row[3], row[5]] for row in rows[1:]]


def test_the_organisations_switches_engaged_and_lifted_newest_first(world, officer, signed_in):
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    kill_switch_engage(actor=world.owner, scope="account", target_id=world.account.pk, reason="runaway algo")
    kill_switch_release(actor=world.admin, scope="account", target_id=world.account.pk)
    kill_switch_engage(actor=world.owner, scope="organisation", target_id=world.org.pk, reason="market halt")
    kill_switch_engage(actor=None, scope="account", target_id=theirs.pk, reason="not ours")
    client = signed_in(officer)
    assert _rows(client.get(EXPORT)) == [
        ["on", f"organisation:{world.org.pk}", "market halt", "owner"],
        ["off", f"account:{world.account.pk}", "", "admin"],
        ["on", f"account:{world.account.pk}", "runaway algo", "owner"],
    ]
    assert _rows(client.get(EXPORT + "?state=off")) == [["off", f"account:{world.account.pk}", "", "admin"]]
    assert [row[3] for row in _rows(client.get(EXPORT + "?actor=owner"))] == ["owner", "owner"]
    html = client.get(URL).content.decode()
    assert "runaway algo" in html and "not ours" not in html


def test_an_unknown_state_is_refused_with_422(world, signed_in):
    response = signed_in(world.owner).get(URL + "?state=maybe")
    assert response.status_code == 422 and 'data-code="state_unknown"' in response.content.decode()


def test_no_event_in_range_is_an_empty_report(world, signed_in):
    html = signed_in(world.owner).get(URL).content.decode()
    assert "No kill switch was engaged or lifted in this range." in html
