from decimal import Decimal

import pytest

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
