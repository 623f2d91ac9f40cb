import pytest
from guardian.shortcuts import assign_perm

from accounts.models import Membership, Organisation, Role, User
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.models import BrokerAccount
from brokers.selectors import (
    account_access_list_for_user,
    account_get_for_user,
    account_list_for_user,
    account_viewer_ids,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    acme = Organisation.objects.create(name="Acme", slug="acme")
    other = Organisation.objects.create(name="Other", slug="other")
    users = {}
    for role in Role:
        users[role] = User.objects.create_user(f"acme-{role}", password="long-password-123")
        Membership.objects.create(user=users[role], organisation=acme, role=role)
    outsider = User.objects.create_user("outsider", password="long-password-123")
    Membership.objects.create(user=outsider, organisation=other, role=Role.OWNER)
    granted = BrokerAccount.objects.create(organisation=acme, label="Main", broker="paper", client_code="A1")
    ungranted = BrokerAccount.objects.create(organisation=acme, label="Prop", broker="paper", client_code="A2")
    assign_perm("brokers.trade_brokeraccount", users[Role.TRADER], granted)
    assign_perm("brokers.view_brokeraccount", users[Role.TRADER], granted)
    assign_perm("brokers.view_brokeraccount", users[Role.VIEWER], granted)
    return users, outsider, granted, ungranted


@pytest.mark.parametrize(
    ("role", "access", "on_granted", "on_ungranted"),
    [
        (Role.OWNER, "manage", True, True),
        (Role.ADMIN, "trade", True, True),
        (Role.TRADER, "trade", True, False),
        (Role.TRADER, "manage", False, False),
        (Role.VIEWER, "view", True, False),
        (Role.VIEWER, "trade", False, False),
    ],
)
def test_roles_and_grants_decide_who_reaches_which_account(world, role, access, on_granted, on_ungranted):
    users, _, granted, ungranted = world
    reachable = set(account_list_for_user(user=users[role], access=access))
    assert (granted in reachable, ungranted in reachable) == (on_granted, on_ungranted)


def test_nobody_reaches_another_organisations_account(world):
    _, outsider, granted, _ = world
    with pytest.raises(BrokerAccountNotFound) as error:
        account_get_for_user(user=outsider, account_id=granted.pk, access="view")
    assert error.value.code == "broker_account_not_found" and error.value.status == 404


def test_a_viewer_who_sees_an_account_is_told_they_may_not_trade_it(world):
    users, _, granted, _ = world
    with pytest.raises(BrokerAccountForbidden) as error:
        account_get_for_user(user=users[Role.VIEWER], account_id=granted.pk, access="trade")
    assert error.value.status == 403


def test_a_grant_in_an_organisation_the_user_left_no_longer_counts(world):
    users, _, granted, _ = world
    Membership.objects.filter(user=users[Role.TRADER]).delete()
    with pytest.raises(BrokerAccountNotFound):
        account_get_for_user(user=users[Role.TRADER], account_id=granted.pk, access="trade")


@pytest.mark.parametrize("access", ["view", "trade", "manage"])
def test_getting_one_account_agrees_with_the_list_for_every_role_grant_and_account(world, access):
    from django.contrib.auth.models import Group

    users, outsider, granted, ungranted = world
    other_account = BrokerAccount.objects.create(
        organisation=Organisation.objects.get(slug="other"), label="Theirs", broker="paper", client_code="O1"
    )
    # a grant through a group, and a superuser with a Trader's role: guardian counts both
    desk = Group.objects.create(name="desk")
    assign_perm("brokers.trade_brokeraccount", desk, ungranted)
    assign_perm("brokers.view_brokeraccount", desk, ungranted)
    grouped = User.objects.create_user("acme-grouped", password="long-password-123")
    grouped.groups.add(desk)
    Membership.objects.create(user=grouped, organisation=granted.organisation, role=Role.TRADER)
    root = User.objects.create_user("acme-root", password="long-password-123", is_superuser=True)
    Membership.objects.create(user=root, organisation=granted.organisation, role=Role.VIEWER)
    for user in [*users.values(), outsider, grouped, root]:
        reachable = set(account_list_for_user(user=user, access=access))
        visible = set(account_list_for_user(user=user, access="view"))
        for account in (granted, ungranted, other_account):
            try:
                got = account_get_for_user(user=user, account_id=account.pk, access=access)
            except BrokerAccountForbidden:
                # A Compliance member of the account's organisation is refused, not told it is missing.
                compliance = Membership.objects.filter(
                    user=user, organisation=account.organisation, role=Role.COMPLIANCE
                ).exists()
                assert account not in reachable and (account in visible or compliance), (user, account)
            except BrokerAccountNotFound:
                assert account not in visible, (user, account)
            else:
                assert got == account and account in reachable, (user, account)
                assert got.organisation.slug == account.organisation.slug
    with pytest.raises(BrokerAccountNotFound):
        account_get_for_user(user=users[Role.OWNER], account_id=other_account.pk + 1000, access=access)


def test_the_access_list_is_the_view_list_with_the_trade_list_as_flags(world):
    from django.contrib.auth.models import Group

    users, outsider, granted, ungranted = world
    BrokerAccount.objects.create(
        organisation=Organisation.objects.get(slug="other"), label="Theirs", broker="paper", client_code="O1"
    )
    desk = Group.objects.create(name="desk")
    assign_perm("brokers.view_brokeraccount", desk, ungranted)
    viewing_trader = User.objects.create_user("acme-viewing", password="long-password-123")
    viewing_trader.groups.add(desk)
    Membership.objects.create(user=viewing_trader, organisation=granted.organisation, role=Role.TRADER)
    root = User.objects.create_user("acme-root", password="long-password-123", is_superuser=True)
    Membership.objects.create(user=root, organisation=granted.organisation, role=Role.VIEWER)
    for user in [*users.values(), outsider, viewing_trader, root]:
        accesses = account_access_list_for_user(user=user)
        assert [a.account for a in accesses] == list(account_list_for_user(user=user, access="view").order_by("pk"))
        trade = set(account_list_for_user(user=user, access="trade"))
        assert {a.account for a in accesses if a.may_trade} == trade, user
        assert all(a.account.organisation.slug for a in accesses)


def test_the_viewers_of_an_account_are_exactly_those_who_may_view_it(world):
    from django.contrib.auth.models import Group

    users, outsider, granted, ungranted = world
    desk = Group.objects.create(name="desk")
    assign_perm("brokers.view_brokeraccount", desk, ungranted)
    grouped = User.objects.create_user("acme-grouped", password="long-password-123")
    grouped.groups.add(desk)
    Membership.objects.create(user=grouped, organisation=granted.organisation, role=Role.VIEWER)
    root = User.objects.create_user("acme-root", password="long-password-123", is_superuser=True)
    Membership.objects.create(user=root, organisation=granted.organisation, role=Role.TRADER)
    everyone = [*users.values(), outsider, grouped, root]
    for account in (granted, ungranted):
        expected = set()
        for user in everyone:
            try:
                account_get_for_user(user=user, account_id=account.pk, access="view")
                expected.add(user.pk)
            except (BrokerAccountNotFound, BrokerAccountForbidden):
                pass
        assert account_viewer_ids(account=account) == expected
    assert account_viewer_ids(account=granted) == {
        users[Role.OWNER].pk,
        users[Role.ADMIN].pk,
        users[Role.TRADER].pk,
        users[Role.VIEWER].pk,
        root.pk,
    }


@pytest.mark.django_db(transaction=True)
def test_a_flush_that_renumbers_the_permissions_leaves_no_stale_ids_behind(world):
    from django.core.management import call_command

    users, _, granted, _ = world
    assert users[Role.VIEWER].pk in account_viewer_ids(account=granted)  # the ids are cached now
    call_command("flush", verbosity=0, interactive=False)  # recreates permissions under new ids
    organisation = Organisation.objects.create(name="Again", slug="again")
    viewer = User.objects.create_user("again-viewer", password="long-password-123")
    Membership.objects.create(user=viewer, organisation=organisation, role=Role.VIEWER)
    account = BrokerAccount.objects.create(organisation=organisation, label="Main", broker="paper", client_code="G1")
    assign_perm("brokers.view_brokeraccount", viewer, account)
    assert account_viewer_ids(account=account) == {viewer.pk}
    assert account_get_for_user(user=viewer, account_id=account.pk, access="view") == account


@pytest.mark.parametrize("access", ["view", "trade", "manage"])
def test_a_compliance_member_is_refused_its_organisations_accounts_and_does_not_find_anothers(world, access):
    users, _, granted, ungranted = world
    other_account = BrokerAccount.objects.create(
        organisation=Organisation.objects.get(slug="other"), label="Theirs", broker="paper", client_code="O1"
    )
    officer = users[Role.COMPLIANCE]
    assign_perm("brokers.trade_brokeraccount", officer, granted)  # a stray grant opens nothing either
    for account in (granted, ungranted):
        with pytest.raises(BrokerAccountForbidden) as caught:
            account_get_for_user(user=officer, account_id=account.pk, access=access)
        assert caught.value.code == "broker_account_forbidden"
    with pytest.raises(BrokerAccountNotFound):
        account_get_for_user(user=officer, account_id=other_account.pk, access=access)
