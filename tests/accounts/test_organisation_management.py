"""Who manages what: roles, removal and grants inside one organisation, nothing across."""

import pytest
from django.contrib.auth.models import Group

from accounts.errors import (
    GrantNotAllowed,
    InvalidRole,
    MemberNotFound,
    NotOrganisationManager,
    OrganisationNotFound,
    OwnerProtected,
)
from accounts.models import Membership, Organisation, Role
from accounts.services import grant_account, membership_remove, membership_set_role, revoke_account
from audit.models import AuditEvent
from brokers.errors import BrokerAccountNotFound
from brokers.models import BrokerAccount
from brokers.selectors import account_list_for_user

from .conftest import make_user, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    acme = Organisation.objects.create(name="Acme", slug="acme")
    other = Organisation.objects.create(name="Other", slug="other")
    people = {role: make_user(f"acme-{role}", organisation=acme, role=role, device=False) for role in Role}
    stranger = make_user("other-owner", organisation=other, role=Role.OWNER, device=False)
    account = BrokerAccount.objects.create(organisation=acme, label="Main", broker="paper", client_code="A1")
    foreign = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="B1")
    return acme, people, stranger, account, foreign


def _role(org, user):
    return Membership.objects.get(organisation=org, user=user).role


def test_an_admin_changes_a_trader_to_viewer_and_it_is_audited(org):
    acme, people, *_ = org
    trader = people[Role.TRADER]
    membership_set_role(actor=people[Role.ADMIN], organisation=acme, user_id=trader.pk, role=Role.VIEWER)
    assert _role(acme, trader) == Role.VIEWER
    assert list(trader.groups.values_list("name", flat=True)) == ["Viewer"]
    event = AuditEvent.objects.get(action="rbac.role_changed")
    assert event.payload_data == {"organisation": "acme", "user": trader.pk, "from": "trader", "to": "viewer"}


def test_nobody_demotes_or_removes_the_owner(org):
    acme, people, *_ = org
    owner = people[Role.OWNER]
    for actor in (people[Role.ADMIN], owner):
        with pytest.raises(OwnerProtected):
            membership_set_role(actor=actor, organisation=acme, user_id=owner.pk, role=Role.ADMIN)
        with pytest.raises(OwnerProtected):
            membership_remove(actor=actor, organisation=acme, user_id=owner.pk)
    assert _role(acme, owner) == Role.OWNER


def test_only_the_owner_transfers_ownership_and_becomes_an_admin(org):
    acme, people, *_ = org
    with pytest.raises(OwnerProtected):
        membership_set_role(actor=people[Role.ADMIN], organisation=acme, user_id=people[Role.TRADER].pk, role="owner")
    membership_set_role(actor=people[Role.OWNER], organisation=acme, user_id=people[Role.ADMIN].pk, role="owner")
    assert _role(acme, people[Role.ADMIN]) == Role.OWNER and _role(acme, people[Role.OWNER]) == Role.ADMIN


def test_traders_and_viewers_manage_nothing(org):
    acme, people, _, account, _ = org
    for role in (Role.TRADER, Role.VIEWER):
        with pytest.raises(NotOrganisationManager):
            membership_set_role(actor=people[role], organisation=acme, user_id=people[Role.VIEWER].pk, role="trader")
        with pytest.raises(NotOrganisationManager):
            grant_account(actor=people[role], account_id=account.pk, user_id=people[Role.VIEWER].pk, access="view")


def test_nobody_reaches_another_organisation(org):
    acme, people, stranger, account, foreign = org
    with pytest.raises(OrganisationNotFound):
        membership_remove(actor=stranger, organisation=acme, user_id=people[Role.TRADER].pk)
    with pytest.raises(BrokerAccountNotFound):
        grant_account(actor=stranger, account_id=account.pk, user_id=stranger.pk, access="view")
    with pytest.raises(BrokerAccountNotFound):
        grant_account(actor=people[Role.OWNER], account_id=foreign.pk, user_id=people[Role.TRADER].pk, access="view")
    with pytest.raises(MemberNotFound):
        grant_account(actor=people[Role.OWNER], account_id=account.pk, user_id=stranger.pk, access="view")


def test_bad_roles_and_access_levels_are_refused(org):
    acme, people, _, account, _ = org
    with pytest.raises(InvalidRole):
        membership_set_role(actor=people[Role.OWNER], organisation=acme, user_id=people[Role.TRADER].pk, role="god")
    with pytest.raises(GrantNotAllowed):
        grant_account(actor=people[Role.OWNER], account_id=account.pk, user_id=people[Role.VIEWER].pk, access="trade")
    with pytest.raises(GrantNotAllowed):
        grant_account(actor=people[Role.OWNER], account_id=account.pk, user_id=people[Role.TRADER].pk, access="all")


def test_grants_decide_what_traders_and_viewers_reach_and_revokes_take_it_back(org):
    _, people, _, account, _ = org
    trader, viewer, admin = people[Role.TRADER], people[Role.VIEWER], people[Role.ADMIN]
    assert account not in account_list_for_user(user=trader, access="trade")
    grant_account(actor=admin, account_id=account.pk, user_id=trader.pk, access="trade")
    grant_account(actor=admin, account_id=account.pk, user_id=viewer.pk, access="view")
    assert account in account_list_for_user(user=trader, access="trade")
    assert account in account_list_for_user(user=viewer, access="view")
    revoke_account(actor=admin, account_id=account.pk, user_id=trader.pk, access="trade")
    assert account not in account_list_for_user(user=trader, access="trade")
    assert account in account_list_for_user(user=trader, access="view")
    revoke_account(actor=admin, account_id=account.pk, user_id=viewer.pk, access="view")
    assert account not in account_list_for_user(user=viewer, access="view")
    assert AuditEvent.objects.filter(action="rbac.grant").count() == 2
    assert AuditEvent.objects.filter(action="rbac.revoke").count() == 2


def test_removing_a_member_drops_their_grants(org):
    acme, people, _, account, _ = org
    trader = people[Role.TRADER]
    grant_account(actor=people[Role.OWNER], account_id=account.pk, user_id=trader.pk, access="trade")
    membership_remove(actor=people[Role.ADMIN], organisation=acme, user_id=trader.pk)
    assert not Membership.objects.filter(user=trader).exists() and not trader.groups.exists()
    assert not trader.has_perm("brokers.view_brokeraccount", account)
    assert AuditEvent.objects.filter(action="rbac.member_removed").exists()


def test_the_role_groups_and_the_compliance_permission_exist():
    perms = {
        name: set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        for name in ("Owner", "Admin", "Trader", "Viewer", "Compliance", "Compliance officer")
    }
    assert "trade_brokeraccount" in perms["Trader"] and "trade_brokeraccount" not in perms["Viewer"]
    assert "change_organisation" in perms["Owner"] and "change_organisation" not in perms["Admin"]
    assert perms["Compliance officer"] == {"view_reports"}
    # The Compliance role reads: no add, change, delete or trade permission of any kind.
    assert perms["Compliance"] == {"view_organisation", "view_reports"}


def test_the_members_page_changes_roles_and_grants(org):
    acme, people, _, account, _ = org
    client = verified_client(people[Role.ADMIN])
    page = client.get("/orgs/acme/members/")
    assert page.status_code == 200 and b"acme-trader" in page.content
    trader = people[Role.TRADER]
    assert client.post(f"/orgs/acme/members/{trader.pk}/role/", {"role": "viewer"}).status_code == 302
    assert _role(acme, trader) == Role.VIEWER
    client.post(f"/broker-accounts/{account.pk}/grant/", {"user_id": trader.pk, "access": "view"})
    assert account in account_list_for_user(user=trader, access="view")
    owner = people[Role.OWNER]
    refused = client.post(f"/orgs/acme/members/{owner.pk}/remove/", follow=True)
    assert b"cannot be removed" in refused.content and _role(acme, owner) == Role.OWNER
    assert verified_client(trader).get("/orgs/acme/members/").status_code == 403
