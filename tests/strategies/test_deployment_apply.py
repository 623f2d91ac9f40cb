from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order
from orders.services.requests import GENERIC_ALGO_ID
from orders.states import Status
from strategies.models import DeploymentAccount, DeploymentEvent, StrategyIntent
from strategies.services import algo_id_create, deployment_apply, deployment_pause, deployment_resume
from tests.strategies.strategy_world import intent, live_account, paper_account

pytestmark = pytest.mark.django_db


def test_an_intent_becomes_an_order_on_each_account_times_its_multiplier(world, make_deployment, market):
    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 4)])
    results = deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=2, key="bar1:long:0")])
    assert [(r.account_id, r.quantity, r.status) for r in results] == [
        (world.account.pk, 2, "placed"),
        (second.pk, 8, "placed"),
    ]
    orders = Order.objects.filter(strategy=deployment.order_key).order_by("account_id")
    assert [(o.account_id, o.quantity, o.status) for o in orders] == [
        (world.account.pk, 2, Status.FILLED),
        (second.pk, 8, Status.FILLED),
    ]
    for order in orders:
        assert order.source == "strategy" and order.tag == "long" and order.algo_id == GENERIC_ALGO_ID
        assert order.idempotency_key == f"dep{deployment.pk}:{order.account_id}:bar1:long:0"
        assert order.placed_by_id == world.trader.pk
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="order").count() == 2
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="intent").count() == 1


def test_orders_carry_the_deployments_algo_id_when_it_has_one(world, make_deployment, market):
    algo = algo_id_create(actor=world.owner, organisation=world.org, code="ALGO7")
    deployment = make_deployment(algo_id=algo)
    deployment_apply(deployment=deployment, intents=[intent(world.equity)], source="webhook")
    order = Order.objects.get(strategy=deployment.order_key)
    assert order.algo_id == "ALGO7" and order.source == "webhook"


def test_reapplying_the_same_intents_places_nothing_new(world, make_deployment, market):
    deployment = make_deployment()
    intents = [intent(world.equity, key="a"), intent(world.equity, side="SELL", key="b")]
    first = deployment_apply(deployment=deployment, intents=intents)
    again = deployment_apply(deployment=deployment, intents=intents)
    assert [r.pk for r in first] == [r.pk for r in again]
    assert Order.objects.count() == 2 and StrategyIntent.objects.count() == 2


def test_a_paused_deployment_places_nothing_and_says_so(world, make_deployment, market):
    deployment = make_deployment()
    deployment_pause(actor=world.trader, deployment=deployment)
    assert deployment_apply(deployment=deployment, intents=[intent(world.equity)]) == []
    assert not Order.objects.exists() and not StrategyIntent.objects.exists()
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="rejection", data__code="deployment_not_running")
    deployment_resume(actor=world.trader, deployment=deployment)
    assert len(deployment_apply(deployment=deployment, intents=[intent(world.equity)])) == 1


def test_a_created_deployment_places_nothing(world, make_deployment, market):
    deployment = make_deployment(start=False)
    assert deployment_apply(deployment=deployment, intents=[intent(world.equity)]) == []
    assert not Order.objects.exists()


def test_a_risk_rejection_is_recorded_not_raised_and_the_other_accounts_go_on(world, make_deployment, market):
    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 1)])
    # an off-tick limit price: every account refuses it, each recorded
    bad = intent(world.equity, order_type="LIMIT", price=Decimal("1000.01"), key="bad")
    results = deployment_apply(deployment=deployment, intents=[bad, intent(world.equity, key="good")])
    assert [(r.key, r.status) for r in results] == [
        ("bad", "rejected"),
        ("bad", "rejected"),
        ("good", "placed"),
        ("good", "placed"),
    ]
    assert results[0].message.startswith("price_off_tick")
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="rejection").count() == 2


def test_a_broker_refusal_is_recorded_as_a_rejection(world, make_deployment, market, monkeypatch):
    from brokers.adapters.base import BrokerMarketClosed
    from paper.adapter import PaperAdapter

    def refuse(self, request):
        raise BrokerMarketClosed("The market is closed.")

    monkeypatch.setattr(PaperAdapter, "place_order_in_transaction", refuse)
    deployment = make_deployment()
    results = deployment_apply(deployment=deployment, intents=[intent(world.equity)])
    assert results[0].status == "rejected" and results[0].order.status == Status.REJECTED
    assert "market is closed" in results[0].message
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="rejection").count() == 1


@pytest.mark.parametrize(
    "bad, problem",
    [
        (dict(key=""), "no key"),
        (dict(key="x" * 99), "too long"),
        (dict(leg=""), "leg"),
        (dict(side="HOLD"), "side"),
        (dict(quantity=0), "quantity"),
        (dict(quantity=-3), "quantity"),
        (dict(quantity=10**12), "quantity"),
        (dict(quantity=True), "quantity"),
        (dict(instrument_id=999_999), "not found"),
    ],
)
def test_a_malformed_intent_is_logged_and_skipped(world, make_deployment, market, bad, problem):
    from strategies.contract import Intent

    deployment = make_deployment()
    fields = dict(leg="long", instrument_id=world.equity.pk, side="BUY", quantity=1, key="k") | bad
    results = deployment_apply(deployment=deployment, intents=[Intent(**fields), intent(world.equity, key="ok")])
    assert [r.key for r in results] == ["ok"]
    event = DeploymentEvent.objects.get(deployment=deployment, kind="rejection")
    assert problem in event.message and event.data["code"] == "intent_invalid"


def test_a_quantity_times_multiplier_beyond_the_largest_order_is_rejected(world, make_deployment, market):
    deployment = make_deployment([(world.account, 1000)])
    results = deployment_apply(deployment=deployment, intents=[intent(world.equity, quantity=10**6)])
    assert results[0].status == "rejected" and "quantity_out_of_range" in results[0].message
    assert not Order.objects.exists()


def test_a_paper_deployment_never_places_a_live_order(world, make_deployment, market, monkeypatch):
    from brokers.adapters import registry

    def refuse(self, *args, **kwargs):
        raise AssertionError("a network adapter was made for a paper deployment")

    monkeypatch.setattr(registry._OverTheNetwork, "__init__", refuse)
    deployment = make_deployment()
    # a live account slipped in behind the services' back is still refused at placement
    kite = live_account(world)
    DeploymentAccount.objects.create(deployment=deployment, account=kite, multiplier=1)
    results = deployment_apply(deployment=deployment, intents=[intent(world.equity)])
    by_account = {r.account_id: r for r in results}
    assert by_account[world.account.pk].status == "placed"
    assert by_account[kite.pk].status == "rejected" and "deployment_mode_mismatch" in by_account[kite.pk].message
    assert not Order.objects.filter(account=kite).exists()


def test_a_live_deployment_whose_algo_id_was_deactivated_places_nothing(world, definition, monkeypatch):
    from strategies.services import algo_id_deactivate, deployment_create, deployment_start

    kite = live_account(world)
    algo = algo_id_create(actor=world.owner, organisation=world.org, code="ALGO1")
    deployment = deployment_create(
        actor=world.trader, definition=definition, name="x", mode="live", accounts=[(kite, 1)], algo_id=algo
    )
    deployment_start(actor=world.trader, deployment=deployment)
    algo_id_deactivate(actor=world.owner, algo_id=algo)
    assert deployment_apply(deployment=deployment, intents=[intent(world.equity)]) == []
    assert not Order.objects.exists()
    assert DeploymentEvent.objects.filter(
        deployment=deployment, kind="rejection", data__code="deployment_algo_id_required"
    ).exists()


def test_an_unexpected_failure_is_recorded_as_failed_and_the_other_accounts_go_on(
    world, make_deployment, market, monkeypatch
):
    from strategies.services import execution

    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 1)])
    real = execution.place_sliced_order

    def flaky(*, account, **kwargs):
        if account.pk == world.account.pk:
            raise RuntimeError("boom")
        return real(account=account, **kwargs)

    monkeypatch.setattr(execution, "place_sliced_order", flaky)
    results = deployment_apply(deployment=deployment, intents=[intent(world.equity)])
    assert [r.status for r in results] == ["failed", "placed"]
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="error").count() == 1


def test_a_kill_switch_halts_only_its_accounts_leg_and_the_others_keep_trading(world, make_deployment, market):
    from orders.services import kill_switch_engage

    second = paper_account(world, "Paper 2", "P2")
    third = paper_account(world, "Paper 5", "P5")
    deployment = make_deployment([(world.account, 1), (second, 2), (third, 5)])
    first = deployment_apply(deployment=deployment, intents=[intent(world.equity, key="a")])
    assert [(r.account_id, r.quantity, r.status) for r in first] == [
        (world.account.pk, 1, "placed"),
        (second.pk, 2, "placed"),
        (third.pk, 5, "placed"),
    ]
    assert [o.quantity for o in Order.objects.filter(strategy=deployment.order_key).order_by("account_id")] == [1, 2, 5]

    kill_switch_engage(actor=world.admin, scope="account", target_id=second.pk, reason="drill")
    later = deployment_apply(deployment=deployment, intents=[intent(world.equity, key="b")])
    assert [(r.account_id, r.quantity, r.status) for r in later] == [
        (world.account.pk, 1, "placed"),
        (third.pk, 5, "placed"),
    ]
    leg = DeploymentAccount.objects.get(deployment=deployment, account=second)
    assert leg.status == DeploymentAccount.Status.HALTED
    assert DeploymentEvent.objects.filter(deployment=deployment, data__step="account_halted").count() == 1
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="strategy.deployment.account_halted").count() == 1
    # the halted leg stays halted: nothing more is placed on it
    deployment_apply(deployment=deployment, intents=[intent(world.equity, key="c")])
    assert not Order.objects.filter(strategy=deployment.order_key, account=second, idempotency_key__endswith=":c")
    assert Order.objects.filter(strategy=deployment.order_key, idempotency_key__endswith=":c").count() == 2


@given(
    quantity=st.one_of(st.integers(min_value=-(10**12), max_value=10**12), st.booleans()),
    price=st.one_of(st.none(), st.decimals(allow_nan=True, allow_infinity=True)),
    order_type=st.sampled_from(["MARKET", "LIMIT", "SL", "SL-M", "ICEBERG", ""]),
    product=st.sampled_from(["MIS", "CNC", "NRML", "XYZ"]),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_intents_are_placed_or_recorded_as_refused_never_raised(
    world, make_deployment, market, quantity, price, order_type, product
):
    deployment = make_deployment()
    key = f"h{StrategyIntent.objects.count()}"
    candidate = intent(world.equity, quantity=quantity, price=price, order_type=order_type, product=product, key=key)
    results = deployment_apply(deployment=deployment, intents=[candidate])
    assert len(results) <= 1
    for result in results:
        assert result.status in {"placed", "rejected"}, result.message
        if result.status == "rejected":
            assert ":" in result.message  # the rule's code, then its message
    if not results:
        assert DeploymentEvent.objects.filter(deployment=deployment, data__code="intent_invalid").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_applies_of_the_same_intents_place_each_once(world, make_deployment, market):
    import threading

    from django.db import connection

    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 2)])
    intents = [intent(world.equity, key="a"), intent(world.equity, side="SELL", key="b")]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def apply():
        try:
            barrier.wait()
            deployment_apply(deployment=deployment, intents=intents)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert Order.objects.filter(strategy=deployment.order_key).count() == 4
    assert StrategyIntent.objects.filter(deployment=deployment).count() == 4


def test_an_engine_steps_intents_are_placed_as_they_come(world, make_deployment, market):
    from datetime import UTC, datetime

    from strategies.contract import Bar
    from strategies.engine import StrategyRun
    from tests.strategies.harness import MemoryInstruments

    deployment = make_deployment([(world.account, 3)])
    run = StrategyRun(kind=deployment.kind, params=deployment.params, instruments=MemoryInstruments())
    run.start(datetime(2026, 1, 19, 3, 45, tzinfo=UTC))
    price = Decimal(1000)
    bar = Bar(world.equity.pk, datetime(2026, 1, 19, 3, 46, tzinfo=UTC), price, price, price, price, 100)
    step = run.on_bar(bar)
    (placed,) = deployment_apply(deployment=deployment, intents=step.intents)
    assert placed.status == "placed" and placed.quantity == 3 and placed.key == step.intents[0].key
    # the same bar evaluated again (a restart) yields the same keys: nothing new is placed
    again = StrategyRun(kind=deployment.kind, params=deployment.params, instruments=MemoryInstruments())
    assert deployment_apply(deployment=deployment, intents=again.on_bar(bar).intents) == [placed]
    assert Order.objects.filter(strategy=deployment.order_key).count() == 1
