"""Each pre-trade rule on both sides of its limit: just inside passes, just outside is refused by name."""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from accounts.models import Organisation
from brokers.models import BrokerAccount
from rms import limits, throttle
from rms.errors import RiskRejected
from rms.models import RiskLimit
from rms.services import OrderIntent, RiskState, check_pre_trade

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = date(2026, 11, 25)


@pytest.fixture
def account(db, settings):
    settings.RMS_DEFAULT_OPS_LIMIT = 100_000
    throttle.use(throttle.LocalThrottle())
    limits.invalidate()
    org = Organisation.objects.create(name="Acme", slug="acme")
    yield BrokerAccount.objects.create(organisation=org, label="P", broker="paper", client_code="P1")
    throttle.use(None)
    limits.invalidate()


def intent(account, **changes) -> OrderIntent:
    base = OrderIntent(
        account_id=account.pk,
        organisation_id=account.organisation_id,
        user_id=None,
        strategy="",
        exchange="NSE",
        instrument_type="EQ",
        lot_size=1,
        tick_size=D("0.05"),
        freeze_quantity=None,
        lower_circuit=D("900"),
        upper_circuit=D("1100"),
        expiry=None,
        tradable=True,
        side="BUY",
        quantity=10,
        order_type="LIMIT",
        product="MIS",
        validity="DAY",
        price=D("1000"),
        trigger_price=None,
    )
    return replace(base, **changes)


def state(**changes) -> RiskState:
    return replace(RiskState(today=TODAY, ltp=D("1000"), available_margin=D("1000000")), **changes)


def limit(account, **fields) -> None:
    RiskLimit.objects.create(account=account, **fields)


def rejected_rule(account, order: OrderIntent, risk: RiskState) -> str | None:
    try:
        check_pre_trade(intent=order, state=risk)
    except RiskRejected as error:
        assert error.extra["rule"] == error.code
        return error.code
    return None


# (rule, limit fields, order/state that just passes, order/state that just fails)
CASES = [
    ("max_order_quantity", {"max_order_quantity": 100}, ({"quantity": 100}, {}), ({"quantity": 101}, {})),
    ("max_order_value", {"max_order_value": D("100000")}, ({"quantity": 100}, {}), ({"quantity": 101}, {})),
    ("max_open_orders", {"max_open_orders": 5}, ({}, {"open_orders": 4}), ({}, {"open_orders": 5})),
    (
        "max_daily_loss",
        {"max_daily_loss": D("5000")},
        ({}, {"realised_today": D("-3000"), "mtm": D("-1999.95")}),
        ({}, {"realised_today": D("-3000"), "mtm": D("-2000")}),
    ),
    ("exchange_not_allowed", {"allowed_exchanges": "NSE,BSE"}, ({"exchange": "BSE"}, {}), ({"exchange": "NFO"}, {})),
    ("product_not_allowed", {"allowed_products": "CNC"}, ({"product": "CNC"}, {}), ({"product": "MIS"}, {})),
    (
        "price_far_from_ltp",
        {"max_ltp_deviation_pct": D("2")},
        ({"price": D("1020")}, {}),
        ({"price": D("1020.05")}, {}),
    ),
]


@pytest.mark.parametrize(("rule", "fields", "inside", "outside"), CASES, ids=[c[0] for c in CASES])
def test_each_limit_passes_at_its_edge_and_rejects_just_past_it(account, rule, fields, inside, outside):
    limit(account, **fields)
    assert rejected_rule(account, intent(account, **inside[0]), state(**inside[1])) is None
    assert rejected_rule(account, intent(account, **outside[0]), state(**outside[1])) == rule


# Rules that need no configured limit: they come from the instrument or the account's state.
INSTRUMENT_CASES = [
    ("price_outside_circuit", ({"price": D("1100")}, {}), ({"price": D("1100.05")}, {})),
    ("price_outside_circuit", ({"price": D("900")}, {}), ({"price": D("899.95")}, {})),
    (
        "freeze_quantity_exceeded",
        ({"freeze_quantity": 100, "quantity": 100}, {}),
        ({"freeze_quantity": 100, "quantity": 101}, {}),
    ),
    ("quantity_not_lot_multiple", ({"lot_size": 75, "quantity": 150}, {}), ({"lot_size": 75, "quantity": 149}, {})),
    ("price_off_tick", ({"price": D("1000.05")}, {}), ({"price": D("1000.03")}, {})),
    (
        "trigger_price_off_tick",
        ({"order_type": "SL", "trigger_price": D("999.95")}, {"ltp": D("990")}),
        ({"order_type": "SL", "trigger_price": D("999.97")}, {"ltp": D("990")}),
    ),
    ("quantity_not_positive", ({"quantity": 1}, {}), ({"quantity": 0}, {})),
    ("quantity_not_positive", ({"quantity": 1}, {}), ({"quantity": -5}, {})),
    ("price_required", ({"order_type": "LIMIT"}, {}), ({"order_type": "LIMIT", "price": None}, {})),
    (
        "trigger_price_required",
        ({"order_type": "SL", "trigger_price": D("999")}, {"ltp": D("990")}),
        ({"order_type": "SL"}, {"ltp": D("990")}),
    ),
    (
        "trigger_price_invalid",
        ({"order_type": "SL", "trigger_price": D("1000")}, {"ltp": D("990")}),
        ({"order_type": "SL", "trigger_price": D("1000.05")}, {"ltp": D("990")}),
    ),
    (
        "trigger_price_invalid",
        ({"order_type": "SL", "side": "SELL", "trigger_price": D("1000")}, {"ltp": D("1010")}),
        ({"order_type": "SL", "side": "SELL", "trigger_price": D("999.95")}, {"ltp": D("1010")}),
    ),
    (
        "trigger_wrong_side",
        ({"order_type": "SL", "trigger_price": D("990.05")}, {"ltp": D("990")}),
        ({"order_type": "SL", "trigger_price": D("990")}, {"ltp": D("990")}),
    ),
    (
        "trigger_wrong_side",
        ({"order_type": "SL-M", "price": None, "side": "SELL", "trigger_price": D("989.95")}, {"ltp": D("990")}),
        ({"order_type": "SL-M", "price": None, "side": "SELL", "trigger_price": D("990")}, {"ltp": D("990")}),
    ),
    (
        "trigger_wrong_side",
        ({"order_type": "SL-M", "price": None, "trigger_price": D("1000.05")}, {"ltp": D("1000")}),
        ({"order_type": "SL-M", "price": None, "trigger_price": D("999.95")}, {"ltp": D("1000")}),
    ),
    (
        "insufficient_holdings",
        ({"product": "CNC", "side": "SELL", "quantity": 10}, {"delivery_held": 10}),
        ({"product": "CNC", "side": "SELL", "quantity": 11}, {"delivery_held": 10}),
    ),
    (
        "insufficient_holdings",
        ({"product": "CNC", "side": "SELL", "quantity": 4}, {"delivery_held": 10, "delivery_selling": 6}),
        ({"product": "CNC", "side": "SELL", "quantity": 5}, {"delivery_held": 10, "delivery_selling": 6}),
    ),
    (
        "insufficient_holdings",
        ({"product": "MIS", "side": "SELL", "quantity": 1}, {"delivery_held": -5}),
        ({"product": "CNC", "side": "SELL", "quantity": 1}, {"delivery_held": -5}),
    ),
    ("quantity_out_of_range", ({"quantity": 100_000_000}, {}), ({"quantity": 100_000_001}, {})),
    (
        "price_out_of_range",
        ({"price": D("9999999999.95"), "upper_circuit": None}, {}),
        ({"price": D("1e10"), "upper_circuit": None}, {}),
    ),
    ("price_out_of_range", ({"price": D("1000")}, {}), ({"price": D("-1e30")}, {})),
    ("price_not_finite", ({"price": D("1000")}, {}), ({"price": D("NaN")}, {})),
    ("price_not_finite", ({"price": D("1000")}, {}), ({"price": D("Infinity")}, {})),
    (
        "trigger_price_out_of_range",
        ({"order_type": "SL", "trigger_price": D("999")}, {"ltp": D("990")}),
        ({"order_type": "SL", "trigger_price": D("1e400")}, {"ltp": D("990")}),
    ),
    (
        "trigger_price_not_finite",
        ({"order_type": "SL", "trigger_price": D("999")}, {"ltp": D("990")}),
        ({"order_type": "SL", "trigger_price": D("sNaN")}, {"ltp": D("990")}),
    ),
    ("contract_expired", ({"expiry": TODAY}, {}), ({"expiry": TODAY - timedelta(days=1)}, {})),
    (
        "product_not_allowed_for_instrument",
        ({"instrument_type": "FUT", "product": "NRML"}, {}),
        ({"instrument_type": "FUT", "product": "CNC"}, {}),
    ),
    ("product_not_allowed_for_instrument", ({"product": "CNC"}, {}), ({"product": "NRML"}, {})),
    (
        "insufficient_margin",
        ({}, {"required_margin": D("500"), "available_margin": D("500")}),
        ({}, {"required_margin": D("500.01"), "available_margin": D("500")}),
    ),
    ("kill_switch_active", ({}, {"kill_switch": None}), ({}, {"kill_switch": "account:1"})),
    (
        "no_market_price",
        ({"order_type": "MARKET", "price": None}, {}),
        ({"order_type": "MARKET", "price": None}, {"ltp": None}),
    ),
    (
        "validity_not_allowed",
        ({"order_type": "SL", "trigger_price": D("999")}, {"ltp": D("990")}),
        ({"order_type": "SL", "trigger_price": D("999"), "validity": "IOC"}, {"ltp": D("990")}),
    ),
    ("instrument_not_tradable", ({}, {}), ({"tradable": False}, {})),
]


@pytest.mark.parametrize(("rule", "inside", "outside"), INSTRUMENT_CASES, ids=[c[0] for c in INSTRUMENT_CASES])
def test_instrument_and_state_rules_pass_at_the_edge_and_reject_past_it(account, rule, inside, outside):
    assert rejected_rule(account, intent(account, **inside[0]), state(**inside[1])) is None
    assert rejected_rule(account, intent(account, **outside[0]), state(**outside[1])) == rule


def test_an_exit_passes_a_daily_loss_breach_and_a_margin_shortfall(account):
    limit(account, max_daily_loss=D("1000"))
    breached = state(realised_today=D("-5000"), required_margin=D("10"), available_margin=D("0"))
    assert rejected_rule(account, intent(account), breached) == "max_daily_loss"
    assert rejected_rule(account, intent(account, side="SELL"), replace(breached, reduces_position=True)) is None


def test_the_strictest_limit_among_organisation_account_user_and_strategy_wins(account, django_user_model):
    user = django_user_model.objects.create_user("t", password="long-password-123")
    RiskLimit.objects.create(organisation_id=account.organisation_id, max_order_quantity=500)
    RiskLimit.objects.create(account=account, max_order_quantity=1000)  # cannot loosen the organisation's 500
    RiskLimit.objects.create(user=user, max_order_quantity=300)
    RiskLimit.objects.create(strategy="momo", max_order_quantity=200)
    assert rejected_rule(account, intent(account, quantity=500), state()) is None
    assert rejected_rule(account, intent(account, quantity=501), state()) == "max_order_quantity"
    assert rejected_rule(account, intent(account, quantity=301, user_id=user.pk), state()) == "max_order_quantity"
    assert rejected_rule(account, intent(account, quantity=201, strategy="momo"), state()) == "max_order_quantity"
    assert rejected_rule(account, intent(account, quantity=201, strategy="other"), state()) is None


def test_a_changed_limit_reaches_the_cache_at_once_in_this_process(account):
    assert rejected_rule(account, intent(account, quantity=50), state()) is None
    limit(account, max_order_quantity=10)
    assert rejected_rule(account, intent(account, quantity=50), state()) == "max_order_quantity"


def test_a_triggered_stop_being_modified_is_not_held_to_the_side_of_the_last_price(account):
    order = intent(account, order_type="SL", trigger_price=D("999"))
    assert rejected_rule(account, order, state(ltp=D("1005"))) == "trigger_wrong_side"
    assert rejected_rule(account, order, state(ltp=D("1005"), stop_triggered=True)) is None


def test_a_stop_with_no_last_price_today_is_not_held_to_a_side(account):
    assert rejected_rule(account, intent(account, order_type="SL", trigger_price=D("999")), state(ltp=None)) is None
