"""The Compliance role reads every report, the audit trail and the exports of its organisation, and can
trade or change nothing: each trading and admin path refuses it with its own answer, nothing written."""

from __future__ import annotations

import json

import pytest

from accounts.credentials import api_key_create
from accounts.errors import ApiKeyScopeNotAllowed, GrantNotAllowed
from accounts.models import ApiKey, Membership, Organisation, Role
from accounts.selectors import trades_nowhere
from accounts.services import grant_account, sync_role_groups
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from orders.models import Order
from rms.models import KillSwitch, RiskLimit
from strategies.models import StrategyDefinition
from tests.trading_world import (
    World,
    _fresh_trading_state,  # noqa: F401 (autouse: no quotes, cached limits or faults)
)

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db

REPORT_PAGES = (
    "",
    "audit/",
    "trades/",
    "order-to-trade/",
    "algos/",
    "rms-rejections/",
    "kill-switch/",
    "logins/",
)
EXPORTS = ("audit/", "trades/", "order-to-trade/", "algos/", "rms-rejections/", "kill-switch/", "logins/")


@pytest.fixture
def world(db) -> World:
    world = World()
    world.compliance = make_user("officer", organisation=world.org, role=Role.COMPLIANCE)
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    return world


def _json(client, method: str, path: str, body: dict):
    return client.generic(method, path, json.dumps(body), content_type="application/json")


def test_a_compliance_member_reads_every_report_and_export_of_its_organisation(world):
    client = verified_client(world.compliance)
    for page in REPORT_PAGES:
        assert client.get(f"/orgs/acme/compliance/{page}").status_code == 200, page
    for page in EXPORTS:
        for fmt in ("csv", "xlsx"):
            response = client.get(f"/orgs/acme/compliance/{page}export/?format={fmt}")
            assert response.status_code == 200, (page, fmt)
    exported = AuditEvent.objects.filter(action="compliance.report_exported", actor=f"user:{world.compliance.pk}")
    assert exported.count() == 2 * len(EXPORTS)


def test_another_organisations_reports_are_not_found_for_a_compliance_member(world):
    Organisation.objects.create(name="Other", slug="other")
    client = verified_client(world.compliance)
    for page in REPORT_PAGES:
        assert client.get(f"/orgs/other/compliance/{page}").status_code == 404, page


@pytest.mark.parametrize("role", [Role.TRADER, Role.VIEWER])
def test_traders_and_viewers_are_refused_every_report_with_403(world, role):
    client = verified_client(world.trader if role == Role.TRADER else world.viewer)
    for page in REPORT_PAGES:
        response = client.get(f"/orgs/acme/compliance/{page}")
        assert response.status_code == 403, page
        assert b"not_report_reader" in response.content or b"Compliance" in response.content


def test_a_compliance_member_places_no_order_on_the_web_or_the_api(world):
    client = verified_client(world.compliance)
    form = {"instrument": world.equity.pk, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "product": "MIS"}
    assert client.post(f"/trading/{world.account.pk}/orders/", {**form, "price": "1000"}).status_code == 403
    body = {
        "account_id": world.account.pk,
        "instrument_id": world.equity.pk,
        "side": "BUY",
        "quantity": 1,
        "order_type": "LIMIT",
        "product": "MIS",
        "price": "1000",
    }
    response = _json(client, "POST", "/api/v1/orders", body)
    assert response.status_code == 403 and response.json()["code"] == "broker_account_forbidden"
    assert not Order.objects.exists()


def test_a_compliance_member_engages_and_lifts_no_kill_switch(world):
    client = verified_client(world.compliance)
    for scope, target in (
        ("organisation", world.org.pk),
        ("account", world.account.pk),
        ("user", world.compliance.pk),
        ("global", None),
    ):
        response = _json(client, "POST", "/api/v1/kill-switch", {"scope": scope, "target_id": target})
        assert response.status_code in (403, 404), (scope, response.content)
        response = _json(client, "POST", "/api/v1/kill-switch/release", {"scope": scope, "target_id": target})
        assert response.status_code in (403, 404), (scope, response.content)
    post = {"scope": "account", "confirm": "yes"}
    assert client.post(f"/trading/{world.account.pk}/kill-switch/", post).status_code == 403
    assert not KillSwitch.objects.exists()


def test_a_compliance_member_changes_no_limits_accounts_members_or_strategies(world):
    client = verified_client(world.compliance)
    assert client.post("/orgs/acme/limits/organisation/", {"max_order_value": "1"}).status_code == 403
    assert _json(client, "PUT", "/api/v1/orgs/acme/limits/organisation", {"max_order_value": "1"}).status_code == 403
    assert not RiskLimit.objects.exists()
    assert client.post("/orgs/acme/broker-accounts/add/", {"broker": "paper", "label": "X"}).status_code == 403
    assert BrokerAccount.objects.count() == 1
    assert client.post(f"/orgs/acme/members/{world.trader.pk}/role/", {"role": "viewer"}).status_code == 403
    assert Membership.objects.get(user=world.trader).role == Role.TRADER
    response = _json(client, "POST", "/api/v1/orgs/acme/strategies", {"name": "S", "kind": "webhook"})
    assert response.status_code == 403
    assert not StrategyDefinition.objects.exists()


def test_a_compliance_member_gets_only_read_api_keys(world):
    with pytest.raises(ApiKeyScopeNotAllowed):
        api_key_create(user=world.compliance, name="bot", scope="trade", allowed_ips=[])
    client = verified_client(world.compliance)
    response = client.post("/account/api-keys/", {"name": "bot", "scope": "trade", "allowed_ips": ""})
    assert response.status_code == 403 and b"read scope" in response.content
    assert not ApiKey.objects.filter(user=world.compliance).exists()
    api_key_create(user=world.compliance, name="reader", scope="read", allowed_ips=[])
    # A member who also trades elsewhere keeps trade keys there.
    elsewhere = Organisation.objects.create(name="Elsewhere", slug="elsewhere")
    Membership.objects.create(user=world.compliance, organisation=elsewhere, role=Role.TRADER)
    assert not trades_nowhere(user=world.compliance)
    api_key_create(user=world.compliance, name="bot", scope="trade", allowed_ips=[])


def test_no_broker_account_is_granted_to_a_compliance_member(world):
    for access in ("view", "trade"):
        with pytest.raises(GrantNotAllowed):
            grant_account(actor=world.owner, account_id=world.account.pk, user_id=world.compliance.pk, access=access)
    assert not world.compliance.has_perm("brokers.view_brokeraccount", world.account)


def test_the_compliance_role_is_chosen_on_the_members_page_and_gives_its_group(world):
    client = verified_client(world.admin)
    html = client.get("/orgs/acme/members/").content.decode()
    assert '<option value="compliance"' in html
    response = client.post(f"/orgs/acme/members/{world.viewer.pk}/role/", {"role": "compliance"})
    assert response.status_code == 302
    assert Membership.objects.get(user=world.viewer).role == Role.COMPLIANCE
    assert set(world.viewer.groups.values_list("name", flat=True)) == {"Compliance"}
    assert world.viewer.has_perm("compliance.view_reports")
    sync_role_groups(user=world.viewer)


def test_a_compliance_member_lands_on_the_reports_and_the_top_bar_links_them(world):
    client = verified_client(world.compliance)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/compliance/"
    response = client.get("/compliance/")
    assert response.status_code == 302 and response["Location"] == "/orgs/acme/compliance/"
    html = client.get("/orgs/acme/compliance/").content.decode()
    assert 'id="nav-reports"' in html and 'href="/orgs/acme/compliance/audit/"' in html
    # Traders keep the dashboard and see no Reports link; Owners see it.
    trader = verified_client(world.trader)
    assert trader.get("/").status_code == 200 and 'id="nav-reports"' not in trader.get("/").content.decode()
    assert 'id="nav-reports"' in verified_client(world.owner).get("/").content.decode()
