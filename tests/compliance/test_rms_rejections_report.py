"""RMS rejections by rule: orders the pre-trade checks refused, per IST day, account and rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Organisation
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance.reports.rms_rejections import HEADER, rms_rejection_list
from compliance.selectors import IST
from core.errors import ApplicationError
from orders.services import kill_switch_engage, place_order
from tests.compliance.exporting import csv_rows

pytestmark = pytest.mark.django_db
URL = "/orgs/acme/compliance/rms-rejections/"
EXPORT = URL + "export/"


def _refused(world, account=None, **kwargs) -> str:
    with pytest.raises(ApplicationError) as refused:
        place_order(
            actor=world.owner,
            account=account or world.account,
            request=world.request(world.equity, **kwargs),
            source="web",
        )
    return refused.value.code


def test_refusals_are_counted_per_rule_and_account_and_another_organisations_are_not(world, officer, signed_in):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    price_rule = _refused(world, price=Decimal("5000"))  # outside the circuit band
    _refused(world, price=Decimal("5000"))
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    kill_switch_engage(actor=world.owner, scope="account", target_id=world.account.pk, reason="halt")
    kill_rule = _refused(world)
    rejected = AuditEvent.objects.filter(action="rms.rejected")
    assert rejected.count() == 3
    today = timezone.localdate(timezone=IST)
    rows = rms_rejection_list(organisation=world.org, date_from=today, date_to=today)
    assert sorted((r.rule, r.account_id, r.count) for r in rows) == sorted(
        [(price_rule, world.account.pk, 2), (kill_rule, world.account.pk, 1)]
    )
    client = signed_in(officer)
    body = b"".join(client.get(EXPORT).streaming_content).decode()
    exported = csv_rows(body)
    assert exported[0] == list(HEADER)
    assert sorted(row[1:5] for row in exported[1:]) == sorted(
        [["acme", "P1", price_rule, "2"], ["acme", "P1", kill_rule, "1"]]
    )
    filtered = csv_rows(b"".join(client.get(EXPORT + f"?rule={kill_rule}").streaming_content))
    assert [row[3:5] for row in filtered[1:]] == [[kill_rule, "1"]]
    html = client.get(URL).content.decode()
    assert f'<strong data-rule="{price_rule}">2</strong>' in html
    assert client.get(URL + f"?account={theirs.pk}").status_code == 422  # not one of acme's accounts
    assert rms_rejection_list(organisation=other, date_from=today, date_to=today) == []


def test_a_malformed_rule_is_refused_with_422(world, signed_in):
    response = signed_in(world.owner).get(URL + "?rule=Not A Rule")
    assert response.status_code == 422 and 'data-code="rule_invalid"' in response.content.decode()


def test_no_refusal_is_an_empty_report_and_a_header_only_export(world, signed_in):
    client = signed_in(world.owner)
    assert "No order was refused in this range." in client.get(URL).content.decode()
    assert csv_rows(b"".join(client.get(EXPORT).streaming_content)) == [list(HEADER)]
