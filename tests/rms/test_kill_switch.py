from decimal import Decimal

import pytest
from django.test import Client

from audit.models import AuditEvent
from orders.models import Order, Position
from orders.services import kill_switch_engage, place_order
from orders.states import Status
from rms.errors import KillSwitchForbidden, RiskRejected
from rms.services import kill_switch_release

pytestmark = pytest.mark.django_db


@pytest.fixture
def trading(world):
    world.quote(world.equity, 1000, bid=999.95, ask=1000.05)
    place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, order_type="MARKET"),
        source="api",
    )
    resting = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("950")),
        source="api",
    )
    assert resting.status == Status.OPEN
    return world, resting


def test_the_account_kill_switch_cancels_open_orders_squares_off_and_blocks_new_orders(trading):
    world, resting = trading
    result = kill_switch_engage(actor=world.trader, scope="account", target_id=world.account.pk, reason="runaway algo")
    assert result == {"kill_switch": f"account:{world.account.pk}", "cancelled": 1, "squared_off": 1}
    resting.refresh_from_db()
    assert resting.status == Status.CANCELLED
    assert Position.objects.get(account=world.account, instrument=world.equity).net_quantity == 0
    with pytest.raises(RiskRejected) as error:
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, price=Decimal("990")),
            source="api",
        )
    assert error.value.code == "kill_switch_active" and error.value.status == 403
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    for action in (
        "rms.kill_switch_on",
        "order.cancel_requested",
        "order.cancelled",
        "position.squared_off",
        "rms.rejected",
    ):
        assert action in actions


def test_only_an_owner_or_admin_lifts_the_kill_switch(trading):
    world, _ = trading
    kill_switch_engage(actor=world.trader, scope="account", target_id=world.account.pk, reason="stop")
    for who in (world.trader, world.viewer):
        with pytest.raises(KillSwitchForbidden):
            kill_switch_release(actor=who, scope="account", target_id=world.account.pk)
    kill_switch_release(actor=world.admin, scope="account", target_id=world.account.pk)
    assert AuditEvent.objects.filter(action="rms.kill_switch_off").count() == 1
    order = place_order(
        actor=world.trader,
        account=world.account,
        request=world.request(world.equity, price=Decimal("990")),
        source="api",
    )
    assert order.status == Status.OPEN


def test_an_organisation_kill_switch_needs_an_owner_or_admin(trading):
    world, _ = trading
    with pytest.raises(KillSwitchForbidden):
        kill_switch_engage(actor=world.trader, scope="organisation", target_id=world.org.pk, reason="x")
    kill_switch_engage(actor=world.owner, scope="organisation", target_id=world.org.pk, reason="firm-wide halt")
    assert not Order.objects.filter(status__in=[Status.OPEN, Status.PENDING]).exists()


def test_a_global_kill_switch_is_for_superusers_only_and_halts_every_account(trading, django_user_model):
    world, _ = trading
    with pytest.raises(KillSwitchForbidden):
        kill_switch_engage(actor=world.owner, scope="global", target_id=None, reason="x")
    root = django_user_model.objects.create_superuser("root", password="long-password-123")
    kill_switch_engage(actor=root, scope="global", target_id=None, reason="exchange outage")
    with pytest.raises(RiskRejected) as error:
        place_order(
            actor=world.owner,
            account=world.account,
            request=world.request(world.equity, price=Decimal("990")),
            source="api",
        )
    assert error.value.code == "kill_switch_active"
    with pytest.raises(KillSwitchForbidden):
        kill_switch_release(actor=world.owner, scope="global", target_id=None)


def test_a_user_kill_switch_blocks_that_user_only_and_cancels_only_their_orders(trading):
    world, resting = trading
    admins = place_order(
        actor=world.admin,
        account=world.account,
        request=world.request(world.equity, price=Decimal("940")),
        source="api",
    )
    result = kill_switch_engage(actor=world.trader, scope="user", target_id=world.trader.pk, reason="stepping away")
    assert result["cancelled"] == 1 and result["squared_off"] == 0
    resting.refresh_from_db()
    admins.refresh_from_db()
    assert resting.status == Status.CANCELLED and admins.status == Status.OPEN
    with pytest.raises(RiskRejected):
        place_order(
            actor=world.trader,
            account=world.account,
            request=world.request(world.equity, price=Decimal("990")),
            source="api",
        )
    assert (
        place_order(
            actor=world.admin,
            account=world.account,
            request=world.request(world.equity, price=Decimal("990")),
            source="api",
        ).status
        == Status.OPEN
    )


def test_under_a_kill_switch_exits_pass_only_up_to_flat(trading):
    world, _ = trading
    kill_switch_engage(actor=world.trader, scope="user", target_id=world.trader.pk, reason="halt")
    exit_half = world.request(world.equity, side="SELL", quantity=5, price=Decimal("1010"))
    first = place_order(actor=world.trader, account=world.account, request=exit_half, source="api")
    assert first.status == Status.OPEN  # resting exit of 5 of the 10 held
    second = place_order(actor=world.trader, account=world.account, request=exit_half, source="api")
    assert second.status == Status.OPEN  # 5 + 5 still only reaches flat
    with pytest.raises(RiskRejected) as error:
        place_order(actor=world.trader, account=world.account, request=exit_half, source="api")  # would go short
    assert error.value.code == "kill_switch_active"


@pytest.mark.parametrize(
    ("scope", "target"), [("bogus", 1), ("account", None), ("global", 7), ("", None), ("organisation", None)]
)
def test_a_scope_that_names_no_kill_switch_is_a_422_not_a_refusal_of_rights(world, otp_login, scope, target):
    api_owner = otp_login(Client(), world.owner)
    for path in ("/api/v1/kill-switch", "/api/v1/kill-switch/release"):
        response = api_owner.post(path, {"scope": scope, "target_id": target}, content_type="application/json")
        assert response.status_code == 422 and response.json()["code"] == "kill_switch_invalid", (
            path,
            response.content,
        )
