import threading
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.models import BrokerAccount
from strategies.errors import (
    AlgoIdInvalid,
    DeploymentInvalid,
    DeploymentModeMismatch,
    DeploymentNeedsAlgoId,
    DeploymentStateConflict,
    StrategyForbidden,
)
from strategies.models import Deployment, DeploymentAccount, DeploymentEvent
from strategies.selectors import (
    deployment_get_for_user,
    deployment_in_schedule,
    deployment_list_for_user,
    deployment_square_off_due,
    is_market_day,
)
from strategies.services import (
    algo_id_create,
    algo_id_deactivate,
    deployment_create,
    deployment_pause,
    deployment_resume,
    deployment_start,
    deployment_stop,
)
from tests.strategies.strategy_world import live_account, paper_account

pytestmark = pytest.mark.django_db


def test_a_deployment_is_created_over_accounts_with_multipliers_audited_and_logged(world, make_deployment):
    second = paper_account(world, "Paper 2", "P2")
    deployment = make_deployment([(world.account, 1), (second, 3)], start=False, max_orders=10)
    assert deployment.status == Deployment.Status.CREATED and deployment.kind == "test_buyer"
    assert deployment.params == {"quantity": 1, "symbol": "RELIANCE"}
    assert sorted(DeploymentAccount.objects.values_list("account_id", "multiplier")) == [
        (world.account.pk, 1),
        (second.pk, 3),
    ]
    assert AuditEvent.objects.filter(action="strategy.deployment.created", target_id=str(deployment.pk)).exists()
    assert DeploymentEvent.objects.filter(deployment=deployment, kind="lifecycle").count() == 1


def test_the_lifecycle_runs_created_running_paused_running_stopped_each_step_audited(world, make_deployment):
    deployment = make_deployment(start=False)
    deployment = deployment_start(actor=world.trader, deployment=deployment)
    assert deployment.status == "running" and deployment.started_at
    assert deployment_pause(actor=world.trader, deployment=deployment, reason="lunch").status == "paused"
    assert deployment_resume(actor=world.admin, deployment=deployment).status == "running"
    deployment = deployment_stop(actor=world.owner, deployment=deployment)
    assert deployment.status == "stopped" and deployment.stopped_at
    actions = list(
        AuditEvent.objects.filter(action__startswith="strategy.deployment.").values_list("action", flat=True)
    )
    assert sorted(actions) == sorted(
        [
            "strategy.deployment.created",
            "strategy.deployment.started",
            "strategy.deployment.paused",
            "strategy.deployment.resumed",
            "strategy.deployment.stopped",
        ]
    )
    steps = list(
        DeploymentEvent.objects.filter(deployment=deployment, kind="lifecycle")
        .order_by("pk")
        .values_list("message", flat=True)
    )
    assert steps == ["created (paper)", "started", "paused: lunch", "resumed", "stopped"]


@pytest.mark.parametrize(
    "step, status",
    [
        (deployment_pause, "created"),
        (deployment_resume, "created"),
    ],
)
def test_a_step_that_does_not_apply_to_the_status_is_a_conflict(world, make_deployment, step, status):
    deployment = make_deployment(start=False)
    with pytest.raises(DeploymentStateConflict) as refused:
        step(actor=world.trader, deployment=deployment)
    assert refused.value.status == 409 and refused.value.extra["status"] == status


def test_a_stopped_deployment_never_starts_again(world, make_deployment):
    deployment = make_deployment()
    deployment_stop(actor=world.trader, deployment=deployment)
    for step in (deployment_start, deployment_resume, deployment_pause, deployment_stop):
        with pytest.raises(DeploymentStateConflict):
            step(actor=world.trader, deployment=deployment)


def test_a_stale_copy_cannot_step_twice(world, make_deployment):
    deployment = make_deployment(start=False)
    stale = Deployment.objects.get(pk=deployment.pk)
    deployment_start(actor=world.trader, deployment=deployment)
    with pytest.raises(DeploymentStateConflict):
        deployment_start(actor=world.trader, deployment=stale)
    assert AuditEvent.objects.filter(action="strategy.deployment.started").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_step_once(world, make_deployment):
    deployment = make_deployment(start=False)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def start():
        try:
            barrier.wait()
            deployment_start(actor=world.trader, deployment=Deployment.objects.get(pk=deployment.pk))
            outcomes.append("started")
        except DeploymentStateConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "started"]
    assert AuditEvent.objects.filter(action="strategy.deployment.started").count() == 1


def test_a_viewer_may_neither_deploy_nor_run_a_deployment(world, make_deployment, definition):
    with pytest.raises(StrategyForbidden):
        deployment_create(
            actor=world.viewer, definition=definition, name="x", mode="paper", accounts=[(world.account, 1)]
        )
    deployment = make_deployment(start=False)
    with pytest.raises(StrategyForbidden):
        deployment_start(actor=world.viewer, deployment=deployment)


def test_a_trader_needs_the_trade_grant_on_every_account(world, definition):
    ungranted = BrokerAccount.objects.create(organisation=world.org, label="Other", broker="paper", client_code="P9")
    with pytest.raises(BrokerAccountNotFound):
        deployment_create(actor=world.trader, definition=definition, name="x", mode="paper", accounts=[(ungranted, 1)])
    from guardian.shortcuts import assign_perm

    assign_perm("brokers.view_brokeraccount", world.trader, ungranted)
    with pytest.raises(BrokerAccountForbidden):
        deployment_create(
            actor=world.trader, definition=definition, name="x", mode="paper", accounts=[(ungranted.pk, 1)]
        )
    # the Owner reaches every account of the organisation
    deployment = deployment_create(
        actor=world.owner, definition=definition, name="x", mode="paper", accounts=[(ungranted, 1)]
    )
    with pytest.raises(BrokerAccountForbidden):  # and a Trader cannot run what they could not deploy
        deployment_start(actor=world.trader, deployment=deployment)


def test_an_account_of_another_organisation_is_refused(world, definition):
    from accounts.models import Organisation

    other = Organisation.objects.create(name="Other", slug="other")
    foreign = BrokerAccount.objects.create(organisation=other, label="Foreign", broker="paper", client_code="F1")
    with pytest.raises(BrokerAccountNotFound):
        deployment_create(actor=world.owner, definition=definition, name="x", mode="paper", accounts=[(foreign, 1)])


@pytest.mark.parametrize(
    "accounts_of, field",
    [
        (lambda w: [], "accounts"),
        (lambda w: [(w.account, 0)], "accounts.0.multiplier"),
        (lambda w: [(w.account, -2)], "accounts.0.multiplier"),
        (lambda w: [(w.account, 1.5)], "accounts.0.multiplier"),
        (lambda w: [(w.account, True)], "accounts.0.multiplier"),
        (lambda w: [(w.account, 10**9)], "accounts.0.multiplier"),
        (lambda w: [(w.account, 1), (w.account, 2)], "accounts.1"),
        (lambda w: [("1", 1)], "accounts.0"),
        (lambda w: [w.account], "accounts.0"),
        (lambda w: "junk", "accounts"),
    ],
)
def test_malformed_accounts_and_multipliers_are_refused_naming_the_field(world, definition, accounts_of, field):
    with pytest.raises(DeploymentInvalid) as refused:
        deployment_create(
            actor=world.trader, definition=definition, name="x", mode="paper", accounts=accounts_of(world)
        )
    assert refused.value.status == 422 and refused.value.extra["field"] == field
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"mode": "both"}, "mode"),
        ({"name": "\x00"}, "name"),
        ({"start_time": time(15, 0), "end_time": time(9, 0)}, "end_time"),
        ({"start_time": "09:15"}, "start_time"),
        ({"max_loss": Decimal("NaN")}, "max_loss"),
        ({"max_loss": Decimal("-5")}, "max_loss"),
        ({"max_loss": Decimal("1e30")}, "max_loss"),
        ({"max_loss": 1.5}, "max_loss"),
        ({"max_loss": "lots"}, "max_loss"),
        ({"max_loss": Decimal("0.00001")}, "max_loss"),
        ({"max_orders": 0}, "max_orders"),
        ({"max_orders": 2**40}, "max_orders"),
        ({"max_open_positions": "3"}, "max_open_positions"),
        ({"trailing_stop": Decimal("Infinity")}, "trailing_stop"),
    ],
)
def test_malformed_settings_are_refused_naming_the_field(world, definition, changes, field):
    kwargs = {"name": "x", "mode": "paper", **changes}
    with pytest.raises(DeploymentInvalid) as refused:
        deployment_create(actor=world.trader, definition=definition, accounts=[(world.account, 1)], **kwargs)
    assert refused.value.status == 422 and refused.value.extra["field"] == field
    assert not Deployment.objects.exists()


def test_paper_and_live_never_mix_in_one_deployment(world, definition):
    kite = live_account(world)
    with pytest.raises(DeploymentModeMismatch) as refused:
        deployment_create(actor=world.trader, definition=definition, name="x", mode="paper", accounts=[(kite, 1)])
    assert refused.value.code == "deployment_mode_mismatch"
    with pytest.raises(DeploymentModeMismatch):
        deployment_create(
            actor=world.trader, definition=definition, name="x", mode="live", accounts=[(world.account, 1)]
        )
    with pytest.raises(DeploymentModeMismatch):
        deployment_create(
            actor=world.trader, definition=definition, name="x", mode="live", accounts=[(kite, 1), (world.account, 1)]
        )
    assert not Deployment.objects.exists()


def test_a_live_deployment_starts_only_with_an_active_algo_id_of_its_organisation(world, definition):
    kite = live_account(world)
    deployment = deployment_create(
        actor=world.trader, definition=definition, name="x", mode="live", accounts=[(kite, 1)]
    )
    with pytest.raises(DeploymentNeedsAlgoId) as refused:
        deployment_start(actor=world.trader, deployment=deployment)
    assert refused.value.status == 409 and refused.value.code == "deployment_algo_id_required"
    algo = algo_id_create(actor=world.owner, organisation=world.org, code="ALGO1")
    with_algo = deployment_create(
        actor=world.trader, definition=definition, name="y", mode="live", accounts=[(kite, 1)], algo_id=algo
    )
    algo_id_deactivate(actor=world.owner, algo_id=algo)
    with pytest.raises(DeploymentNeedsAlgoId):
        deployment_start(actor=world.trader, deployment=with_algo)
    with pytest.raises(AlgoIdInvalid):  # nor can an inactive one be given at creation
        deployment_create(
            actor=world.trader, definition=definition, name="z", mode="live", accounts=[(kite, 1)], algo_id=algo
        )


def test_an_algo_id_of_another_organisation_is_refused(world, definition):
    from accounts.models import Organisation
    from strategies.models import AlgoId

    other = Organisation.objects.create(name="Other", slug="other")
    foreign = AlgoId.objects.create(organisation=other, code="THEIRS")
    with pytest.raises(AlgoIdInvalid):
        deployment_create(
            actor=world.trader,
            definition=definition,
            name="x",
            mode="paper",
            accounts=[(world.account, 1)],
            algo_id=foreign,
        )


def test_members_see_their_organisations_deployments_and_outsiders_do_not(world, make_deployment):
    from accounts.models import User
    from strategies.errors import DeploymentNotFound

    deployment = make_deployment(start=False)
    assert list(deployment_list_for_user(user=world.viewer)) == [deployment]
    assert deployment_get_for_user(user=world.viewer, deployment_id=deployment.pk) == deployment
    outsider = User.objects.create_user("outsider")
    assert not deployment_list_for_user(user=outsider).exists()
    with pytest.raises(DeploymentNotFound):
        deployment_get_for_user(user=outsider, deployment_id=deployment.pk)
    with pytest.raises(DeploymentNotFound):
        deployment_get_for_user(user=world.viewer, deployment_id="1; drop")


def test_the_schedule_is_its_ist_hours_on_market_days(world, make_deployment, settings):
    from zoneinfo import ZoneInfo

    ist = ZoneInfo("Asia/Kolkata")
    settings.STRATEGIES_CALENDAR = "nse"
    settings.NSE_HOLIDAYS = ["2026-01-26"]
    deployment = make_deployment(start=False, start_time=time(9, 20), end_time=time(15, 0))
    monday = datetime(2026, 1, 19, 10, 0, tzinfo=ist)
    assert deployment_in_schedule(deployment=deployment, at=monday)
    assert not deployment_in_schedule(deployment=deployment, at=monday.replace(hour=9, minute=19))
    assert deployment_in_schedule(deployment=deployment, at=monday.replace(hour=9, minute=20))
    assert not deployment_in_schedule(deployment=deployment, at=monday.replace(hour=15, minute=0))
    assert not deployment_in_schedule(deployment=deployment, at=datetime(2026, 1, 17, 10, 0, tzinfo=ist))  # Saturday
    assert not deployment_in_schedule(deployment=deployment, at=datetime(2026, 1, 26, 10, 0, tzinfo=ist))  # holiday
    assert is_market_day(monday.date()) and not is_market_day(datetime(2026, 1, 26).date())
    # 04:00 UTC is 09:30 IST
    assert deployment_in_schedule(deployment=deployment, at=datetime(2026, 1, 19, 4, 0, tzinfo=ZoneInfo("UTC")))


@override_settings(STRATEGIES_CALENDAR="nse", NSE_HOLIDAYS=["2026-01-26"])
def test_on_the_nse_calendar_weekends_and_holidays_are_not_market_days():
    assert is_market_day(date(2026, 1, 19))  # a Monday
    assert not is_market_day(date(2026, 1, 17)) and not is_market_day(date(2026, 1, 18))  # Saturday, Sunday
    assert not is_market_day(date(2026, 1, 26))  # a holiday


@override_settings(STRATEGIES_CALENDAR="always", NSE_HOLIDAYS=["2026-01-26"])
def test_on_the_always_calendar_every_day_is_a_market_day_and_the_hours_still_apply(world, make_deployment):
    from zoneinfo import ZoneInfo

    assert all(is_market_day(date(2026, 1, 17) + timedelta(days=n)) for n in range(10))
    deployment = make_deployment(start=False, start_time=time(9, 20), end_time=time(15, 0))
    deployment.square_off_time = time(15, 10)
    sunday = datetime(2026, 1, 18, 10, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert deployment_in_schedule(deployment=deployment, at=sunday)
    assert not deployment_in_schedule(deployment=deployment, at=sunday.replace(hour=9, minute=19))
    assert not deployment_in_schedule(deployment=deployment, at=sunday.replace(hour=15, minute=0))
    assert not deployment_square_off_due(deployment=deployment, at=sunday.replace(hour=15, minute=9))
    assert deployment_square_off_due(deployment=deployment, at=sunday.replace(hour=15, minute=10))


def test_the_calendar_defaults_to_always_in_standalone_mode_and_nse_in_the_full_stack(settings):
    assert ("always" if settings.STANDALONE else "nse") == settings.STRATEGIES_CALENDAR


_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,8})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
)


@given(
    multiplier=_anything,
    max_loss=_anything,
    max_orders=_anything,
    max_open_positions=_anything,
    trailing_stop=_anything,
    name=st.text(max_size=120),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_settings_are_created_or_refused_with_a_code_and_nothing_half_written(
    world, definition, multiplier, max_loss, max_orders, max_open_positions, trailing_stop, name
):
    before = (Deployment.objects.count(), DeploymentAccount.objects.count(), DeploymentEvent.objects.count())
    try:
        deployment = deployment_create(
            actor=world.trader,
            definition=definition,
            name=name,
            mode="paper",
            accounts=[(world.account, multiplier)],
            max_loss=max_loss,
            max_orders=max_orders,
            max_open_positions=max_open_positions,
            trailing_stop=trailing_stop,
        )
    except DeploymentInvalid as refused:
        assert refused.status == 422 and refused.code.startswith("deployment_") and refused.extra["field"]
        assert (
            Deployment.objects.count(),
            DeploymentAccount.objects.count(),
            DeploymentEvent.objects.count(),
        ) == before
    else:
        stored = Deployment.objects.get(pk=deployment.pk)
        assert stored.accounts.get().multiplier == multiplier
        for field, value in (("max_loss", max_loss), ("trailing_stop", trailing_stop)):
            assert (getattr(stored, field) is None) == (value is None)
