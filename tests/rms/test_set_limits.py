"""rms.services.risk_limit_set: who may set which scope's limits, what is refused, and that the next
order is checked against what was saved."""

from dataclasses import replace
from decimal import Decimal

import pytest
from django.core.cache import cache

from accounts.models import Membership, Organisation, Role
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from rms import limits
from rms.errors import RiskLimitForbidden, RiskLimitInvalid, RiskLimitScopeNotFound, RiskRejected
from rms.models import RiskLimit
from rms.services import check_pre_trade, risk_limit_set
from tests.rms.test_check_pre_trade import intent, state

pytestmark = pytest.mark.django_db


def _quantity_refused(order) -> bool:
    try:
        check_pre_trade(intent=order, state=state())
    except RiskRejected as error:
        assert error.code == "max_order_quantity"
        return True
    return False


def _set(world, scope="organisation", target_id=None, actor=None, **values):
    return risk_limit_set(
        actor=actor or world.owner, organisation=world.org, scope=scope, target_id=target_id, values=values
    )


@pytest.mark.parametrize("who", ["owner", "admin"])
@pytest.mark.parametrize("scope", ["organisation", "account", "user"])
def test_an_owner_or_admin_sets_a_scope_and_the_next_order_is_checked_against_it(world, who, scope):
    target_id = {"organisation": None, "account": world.account.pk, "user": world.trader.pk}[scope]
    order = intent(world.account, user_id=world.trader.pk)
    assert not _quantity_refused(replace(order, quantity=1000))
    row = _set(world, scope, target_id, actor=getattr(world, who), max_order_quantity="100")
    assert row.max_order_quantity == 100
    assert not _quantity_refused(replace(order, quantity=100))
    assert _quantity_refused(replace(order, quantity=101))


def test_every_field_is_stored_and_the_change_is_audited_with_before_and_after(world):
    _set(world, "account", world.account.pk, max_order_quantity="500")
    row = _set(
        world,
        "account",
        world.account.pk,
        max_order_quantity="100",
        max_order_value="250000.50",
        max_open_orders="0",
        max_daily_loss="10000",
        max_orders_per_second="5",
        max_ltp_deviation_pct="2.5",
        allowed_exchanges=["nfo", "NSE"],
        allowed_products="MIS,NRML",
    )
    row.refresh_from_db()
    assert (row.max_order_quantity, row.max_order_value, row.max_open_orders) == (100, Decimal("250000.50"), 0)
    assert (row.max_daily_loss, row.max_orders_per_second, row.max_ltp_deviation_pct) == (10000, 5, Decimal("2.50"))
    assert (row.allowed_exchanges, row.allowed_products) == ("NSE,NFO", "MIS,NRML")
    event = AuditEvent.objects.filter(action="rms.limits_changed").order_by("-pk").first()
    assert (event.target_type, event.target_id) == ("brokers.brokeraccount", str(world.account.pk))
    payload = event.payload_data
    assert payload["scope"] == "account" and payload["row"] == row.pk and payload["organisation"] == "acme"
    assert payload["before"]["max_order_quantity"] == 500 and payload["before"]["allowed_exchanges"] is None
    assert payload["after"]["max_order_quantity"] == 100 and payload["after"]["allowed_exchanges"] == ["NSE", "NFO"]
    limits_now = limits.limits_for(account_id=world.account.pk, organisation_id=world.org.pk, user_id=None)
    assert limits_now.max_orders_per_second == 5 and limits_now.allowed_products == frozenset({"MIS", "NRML"})


def test_fields_not_given_keep_their_values_and_clearing_every_field_deletes_the_row(world):
    _set(world, max_order_quantity="100", allowed_products=["MIS"])
    row = _set(world, max_daily_loss="5000")
    assert (row.max_order_quantity, row.max_daily_loss, row.allowed_products) == (100, 5000, "MIS")
    assert _set(world, max_order_quantity="", max_daily_loss=None, allowed_products=[]) is None
    assert not RiskLimit.objects.exists()
    assert AuditEvent.objects.filter(action="rms.limits_changed").count() == 3
    assert AuditEvent.objects.filter(action="rms.limits_changed").order_by("-pk")[0].payload_data["row"] is None


def test_saving_what_is_already_set_writes_and_audits_nothing(world):
    _set(world, max_order_quantity="100")
    _set(world, max_order_quantity="100.0", max_daily_loss="")
    assert _set(world, "account", world.account.pk, max_order_quantity="") is None
    assert RiskLimit.objects.count() == 1 and AuditEvent.objects.filter(action="rms.limits_changed").count() == 1


def test_two_rows_of_one_scope_are_merged_into_one_keeping_the_strictest(world):
    RiskLimit.objects.create(organisation=world.org, max_order_quantity=300, max_daily_loss=9000)
    RiskLimit.objects.create(organisation=world.org, max_order_quantity=200)
    row = _set(world, max_open_orders="20")
    assert list(RiskLimit.objects.values_list("pk", flat=True)) == [row.pk]
    assert (row.max_order_quantity, row.max_daily_loss, row.max_open_orders) == (200, 9000, 20)


@pytest.mark.parametrize(
    ("values", "code", "message"),
    [
        ({"max_order_quantity": "-1"}, "limit_negative", "Max order quantity cannot be negative."),
        ({"max_daily_loss": "-0.01"}, "limit_negative", "Max daily loss (₹) cannot be negative."),
        ({"max_order_value": "lots"}, "limit_not_a_number", "Max order value (₹) must be a number."),
        ({"max_order_value": "NaN"}, "limit_not_a_number", "Max order value (₹) must be a number."),
        ({"max_open_orders": True}, "limit_not_a_number", "Max open orders must be a number."),
        ({"max_orders_per_second": "2.5"}, "limit_not_whole", "Max orders per second must be a whole number."),
        ({"max_ltp_deviation_pct": "1.005"}, "limit_too_precise", "Max % from LTP takes at most 2 decimal places."),
        ({"max_ltp_deviation_pct": "10000"}, "limit_too_large", "Max % from LTP must be below 10000."),
        ({"max_order_value": "1e40"}, "limit_too_large", "Max order value (₹) must be below 10000000000000."),
        ({"max_order_quantity": "3000000000"}, "limit_too_large", "Max order quantity can be at most 2147483647."),
        ({"allowed_exchanges": ["NSE", "NYSE"]}, "exchange_unknown", "Unknown exchange NYSE; choose from"),
        ({"allowed_products": "MIS,BO"}, "product_unknown", "Unknown product BO; choose from CNC, MIS, NRML."),
        ({"max_position": "5"}, "limit_field_unknown", "'max_position' is not a limit."),
    ],
)
def test_bad_values_are_refused_by_name_and_nothing_is_written(world, values, code, message):
    with pytest.raises(RiskLimitInvalid) as refused:
        _set(world, **({"max_open_orders": "10"} | values))  # a good value beside the bad one
    assert refused.value.code == code and refused.value.message.startswith(message) and refused.value.status == 422
    field = next(iter(values))
    assert refused.value.extra["fields"] == {field: {"code": code, "message": refused.value.message}}
    assert not RiskLimit.objects.exists() and not AuditEvent.objects.filter(action="rms.limits_changed").exists()


def test_every_refused_field_is_named_at_once(world):
    with pytest.raises(RiskLimitInvalid) as refused:
        _set(world, max_order_quantity="-5", max_daily_loss="x", allowed_products=["XYZ"])
    assert set(refused.value.extra["fields"]) == {"max_order_quantity", "max_daily_loss", "allowed_products"}


def test_traders_viewers_and_other_organisations_set_nothing(world, django_user_model):
    other = Organisation.objects.create(name="Other", slug="other")
    stranger = django_user_model.objects.create_user("other-owner")
    Membership.objects.create(user=stranger, organisation=other, role=Role.OWNER)
    for actor in (world.trader, world.viewer, stranger):
        with pytest.raises(RiskLimitForbidden):
            _set(world, actor=actor, max_order_quantity="1")
    assert not RiskLimit.objects.exists()


def test_an_account_or_member_of_another_organisation_is_not_a_scope(world, django_user_model):
    other = Organisation.objects.create(name="Other", slug="other")
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    outsider = django_user_model.objects.create_user("outsider")
    with pytest.raises(RiskLimitScopeNotFound):
        _set(world, "account", theirs.pk, max_order_quantity="1")
    with pytest.raises(RiskLimitScopeNotFound):
        _set(world, "user", outsider.pk, max_order_quantity="1")
    with pytest.raises(RiskLimitScopeNotFound):
        _set(world, "strategy", 1, max_order_quantity="1")
    assert not RiskLimit.objects.exists()


def test_a_members_limit_covers_their_orders_in_this_organisation_only(world):
    other = Organisation.objects.create(name="Other", slug="other")
    Membership.objects.create(user=world.trader, organisation=other, role=Role.TRADER)
    theirs = BrokerAccount.objects.create(organisation=other, label="Theirs", broker="paper", client_code="T1")
    _set(world, "user", world.trader.pk, max_order_quantity="10")
    assert _quantity_refused(intent(world.account, user_id=world.trader.pk, quantity=11))
    assert not _quantity_refused(intent(world.account, user_id=world.admin.pk, quantity=11))
    assert not _quantity_refused(intent(theirs, user_id=world.trader.pk, quantity=11))


def test_a_save_tells_other_processes_now_and_again_after_commit(world, django_capture_on_commit_callbacks):
    cache.set(limits.VERSION_KEY, 1, timeout=None)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _set(world, max_order_quantity="10")
        assert cache.get(limits.VERSION_KEY) == 2  # at the save: this process and any that reloads meanwhile
    assert limits.invalidate in callbacks
    assert cache.get(limits.VERSION_KEY) == 3  # after commit: a process that reloaded before it reloads again
