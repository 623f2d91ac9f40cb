"""What a kill switch covers, read before engaging it and shown while it is on: its scope in words,
who may lift it, and how many open orders and positions engaging it would close."""

from decimal import Decimal

import pytest

from accounts.models import Membership, Organisation, Role
from brokers.models import BrokerAccount
from orders.selectors import kill_switch_impact
from orders.services import kill_switch_engage, place_order
from orders.states import Status
from rms.selectors import kill_switch_releasers, kill_switch_scope_words

pytestmark = pytest.mark.django_db


@pytest.fixture
def trading(world):
    """In Acme: one filled buy (an open position) and one resting limit order by the trader, and one
    resting order by the owner; in another organisation, an account with its own resting order."""
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    for actor in (world.trader, world.owner):
        resting = place_order(
            actor=actor, account=world.account, request=world.request(world.equity, price=Decimal("950")), source="api"
        )
        assert resting.status == Status.OPEN
    other_org = Organisation.objects.create(name="Bharat Traders", slug="bharat")
    Membership.objects.create(user=world.trader, organisation=other_org, role=Role.OWNER)
    world.other_account = BrokerAccount.objects.create(
        organisation=other_org, label="Zerodha-1", broker="paper", client_code="ABC123"
    )
    place_order(
        actor=world.trader,
        account=world.other_account,
        request=world.request(world.equity, price=Decimal("950")),
        source="api",
    )
    return world


def test_the_impact_counts_the_open_orders_and_positions_each_scope_would_close(trading):
    world = trading
    assert kill_switch_impact(scope="account", target_id=world.account.pk) == {"open_orders": 2, "positions": 1}
    assert kill_switch_impact(scope="account", target_id=world.other_account.pk) == {"open_orders": 1, "positions": 0}
    assert kill_switch_impact(scope="organisation", target_id=world.org.pk) == {"open_orders": 2, "positions": 1}
    assert kill_switch_impact(scope="global", target_id=None) == {"open_orders": 3, "positions": 1}


def test_a_users_switch_counts_that_users_orders_on_every_account_and_no_positions(trading):
    world = trading
    assert kill_switch_impact(scope="user", target_id=world.trader.pk) == {"open_orders": 2, "positions": 0}
    assert kill_switch_impact(scope="user", target_id=world.owner.pk) == {"open_orders": 1, "positions": 0}


def test_the_impact_is_what_engaging_the_switch_then_does(trading):
    world = trading
    impact = kill_switch_impact(scope="account", target_id=world.account.pk)
    done = kill_switch_engage(actor=world.owner, scope="account", target_id=world.account.pk, reason="test")
    assert (done["cancelled"], done["squared_off"]) == (impact["open_orders"], impact["positions"])
    assert kill_switch_impact(scope="account", target_id=world.account.pk) == {"open_orders": 0, "positions": 0}


def test_each_scope_reads_in_words_never_as_its_key(trading):
    world = trading
    words = {
        "account": kill_switch_scope_words(scope="account", target_id=world.other_account.pk, viewer=world.owner),
        "organisation": kill_switch_scope_words(scope="organisation", target_id=world.org.pk, viewer=world.owner),
        "global": kill_switch_scope_words(scope="global", target_id=None, viewer=world.owner),
        "own": kill_switch_scope_words(scope="user", target_id=world.trader.pk, viewer=world.trader),
    }
    assert words == {
        "account": "Account Zerodha-1 (ABC123)",
        "organisation": "Organisation Acme",
        "global": "all trading on the platform",
        "own": "your own trading",
    }
    world.trader.first_name, world.trader.last_name = "Tara", "Trader"
    world.trader.save()
    assert (
        kill_switch_scope_words(scope="user", target_id=world.trader.pk, viewer=world.owner) == "trading by Tara Trader"
    )


def test_who_may_lift_a_switch_is_named_by_role_and_organisation(trading):
    world = trading
    assert kill_switch_releasers(scope="account", target_id=world.account.pk) == "an Owner or Admin of Acme"
    assert kill_switch_releasers(scope="organisation", target_id=world.org.pk) == "an Owner or Admin of Acme"
    assert (
        kill_switch_releasers(scope="user", target_id=world.trader.pk) == "an Owner or Admin of Acme and Bharat Traders"
    )
    assert kill_switch_releasers(scope="global", target_id=None) == "a platform superuser"
