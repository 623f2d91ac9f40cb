"""The backtest pages: running a backtest from a strategy's page, its progress (HTMX polling) and report
(metrics, equity and drawdown, monthly returns, trades and their CSV), comparing two runs, deploying the
run's parameters to paper in one click, and the sweep pages (grid form, progress, ranked results)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from brokers.models import BrokerAccount
from strategies import tasks
from strategies.models import BacktestRun, BacktestSweep, Deployment, StrategyDefinition
from strategies.services import sweeps
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
FORM = {
    "instrument": "NSE:INFY",
    "start": "2026-03-02",
    "end": "2026-03-02",
    "fill_mode": "next_open",
    "slippage_bps": "2",
    "initial_capital": "1000000",
    "charges": "on",
}


@pytest.fixture
def sent(monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(sweeps, "send_run", queued.append)
    return queued


def _client(user) -> Client:
    return login_with_otp(Client(), user)


def _run(world, ema, client=None, **overrides) -> BacktestRun:
    client = client or _client(world.trader)
    response = client.post(reverse("strategies:backtest-new", args=[world.org.slug, ema.pk]), FORM | overrides)
    assert response.status_code == 302, response.content.decode()[:2000]
    return BacktestRun.objects.latest("pk")


def test_a_backtest_runs_from_the_strategys_page_shows_its_progress_then_its_report(
    world, ema, sent, django_capture_on_commit_callbacks
):
    client = _client(world.trader)
    page = client.get(reverse("strategies:backtest-new", args=[world.org.slug, ema.pk]))
    assert page.status_code == 200 and 'value="NSE:INFY"' in page.content.decode()  # from its parameters
    with django_capture_on_commit_callbacks(execute=True):
        run = _run(world, ema, client)
    assert sent == [run.pk] and run.settings["slippage_bps"] == 2 and run.settings["charges"]["enabled"] is True

    url = reverse("strategies:backtest", args=[world.org.slug, run.pk])
    queued = client.get(url).content.decode()
    assert 'id="backtest-progress"' in queued and 'hx-trigger="every 2s"' in queued and "Queued" in queued
    polled = client.get(reverse("strategies:backtest-progress", args=[world.org.slug, run.pk]), **HTMX)
    assert polled.status_code == 200 and "HX-Refresh" not in polled

    tasks.run_backtest(run.pk)
    polled = client.get(reverse("strategies:backtest-progress", args=[world.org.slug, run.pk]), **HTMX)
    assert polled["HX-Refresh"] == "true"  # finished: the page reloads into its report
    report = client.get(url).content.decode()
    run.refresh_from_db()
    assert 'id="backtest-metrics"' in report and 'data-metric="net_pnl"' in report
    assert 'id="backtest-chart"' in report and 'id="backtest-equity"' in report
    assert 'id="monthly-returns"' in report and "Mar" in report
    assert report.count("<tr>", report.index('id="backtest-trades"')) >= len(run.trades) > 0
    assert "every 2s" not in report

    exported = client.get(reverse("strategies:backtest-trades-csv", args=[world.org.slug, run.pk]))
    lines = exported.content.decode().splitlines()
    assert exported["Content-Type"].startswith("text/csv") and lines[0].startswith("leg,instrument_id")
    assert len(lines) == len(run.trades) + 1


@pytest.mark.parametrize(
    ("overrides", "field", "status"),
    [
        ({"instrument": "NSE:NOPE"}, "instrument", 422),
        ({"start": "2026-02-01", "end": "2026-02-03"}, "start", 422),
        ({"start": "2026-03-05"}, "start", 422),
        ({"start": "not a date"}, "start", 400),
        ({"slippage_bps": "99999999999999999999"}, "slippage_bps", 400),
        ({"fill_mode": "whenever"}, "fill_mode", 400),
    ],
)
def test_bad_backtest_input_is_shown_beside_its_field(world, ema, sent, overrides, field, status):
    response = _client(world.trader).post(
        reverse("strategies:backtest-new", args=[world.org.slug, ema.pk]), FORM | overrides
    )
    assert response.status_code == status
    assert f'data-field-error="{field}"' in response.content.decode()
    assert not BacktestRun.objects.exists() and sent == []


def test_a_viewer_sees_backtests_but_not_the_form(world, ema, sent):
    client = _client(world.viewer)
    page = client.get(reverse("strategies:backtest-new", args=[world.org.slug, ema.pk])).content.decode()
    assert 'id="backtest-form"' not in page
    refused = client.post(reverse("strategies:backtest-new", args=[world.org.slug, ema.pk]), FORM)
    assert refused.status_code == 403 and not BacktestRun.objects.exists()


def test_two_runs_are_compared_side_by_side(world, ema, sent):
    client = _client(world.trader)
    a = _run(world, ema, client)
    b = _run(world, ema, client, fill_mode="close")
    tasks.run_backtest(a.pk), tasks.run_backtest(b.pk)
    page = client.get(reverse("strategies:backtest-compare", args=[world.org.slug]), {"a": a.pk, "b": b.pk})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="backtest-compare"' in html and 'id="backtest-curves"' in html
    assert html.count('data-metric="net_pnl"') == 2
    missing = client.get(reverse("strategies:backtest-compare", args=[world.org.slug]), {"a": a.pk})
    assert missing.status_code == 422
    other = client.get(reverse("strategies:backtest-compare", args=[world.org.slug]), {"a": a.pk, "b": 10**9})
    assert other.status_code == 404


def _paper_account(world) -> BrokerAccount:
    account = BrokerAccount.objects.create(organisation=world.org, label="Paper", broker="paper", client_code="PB1")
    assign_perm("brokers.trade_brokeraccount", world.trader, account)
    assign_perm("brokers.view_brokeraccount", world.trader, account)
    return account


def test_a_run_is_deployed_to_paper_with_its_parameters_in_one_click(world, ema, sent):
    account = _paper_account(world)
    client = _client(world.trader)
    run = _run(world, ema, client)
    tasks.run_backtest(run.pk)
    report = client.get(reverse("strategies:backtest", args=[world.org.slug, run.pk])).content.decode()
    assert "Deploy to paper" in report and f'value="{account.pk}"' in report
    response = client.post(
        reverse("strategies:backtest-deploy", args=[world.org.slug, run.pk]), {"account": account.pk}
    )
    deployment = Deployment.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/deployments/{deployment.pk}/")
    assert deployment.mode == "paper" and deployment.params == run.params and deployment.definition_id == ema.pk
    assert list(deployment.accounts.values_list("account_id", flat=True)) == [account.pk]


def test_a_sweep_run_with_other_parameters_deploys_a_copy_of_the_strategy_carrying_them(world, ema, sent):
    account = _paper_account(world)
    client = _client(world.trader)
    response = client.post(
        reverse("strategies:sweep-new", args=[world.org.slug, ema.pk]),
        FORM | {"grid": '{"fast": [4], "slow": [8]}', "metric": "net_pnl"},
    )
    run = BacktestRun.objects.get()
    tasks.run_backtest(run.pk)
    response = client.post(
        reverse("strategies:backtest-deploy", args=[world.org.slug, run.pk]), {"account": account.pk}
    )
    assert response.status_code == 302
    deployment = Deployment.objects.get()
    assert deployment.params["fast"] == 4 and deployment.params == run.params
    copy = StrategyDefinition.objects.get(pk=deployment.definition_id)
    assert copy.pk != ema.pk and f"backtest {run.pk}" in copy.name


def test_deploying_to_a_live_or_unknown_account_is_refused(world, ema, sent):
    client = _client(world.trader)
    run = _run(world, ema, client)
    tasks.run_backtest(run.pk)
    live = BrokerAccount.objects.create(organisation=world.org, label="Kite", broker="kite", client_code="K9")
    assign_perm("brokers.trade_brokeraccount", world.trader, live)
    url = reverse("strategies:backtest-deploy", args=[world.org.slug, run.pk])
    assert client.post(url, {"account": live.pk}).status_code in (404, 422)  # not a paper account it may trade
    assert client.post(url, {"account": "x"}).status_code == 422
    assert client.post(url, {}).status_code == 422
    assert not Deployment.objects.exists()


def test_a_sweep_is_started_from_its_page_polls_its_progress_and_ranks_its_runs(world, ema, sent):
    client = _client(world.trader)
    form = client.get(reverse("strategies:sweep-new", args=[world.org.slug, ema.pk]))
    assert form.status_code == 200 and 'id="sweep-form"' in form.content.decode()
    response = client.post(
        reverse("strategies:sweep-new", args=[world.org.slug, ema.pk]),
        FORM | {"grid": '{"fast": [3, 5], "slow": [8, 13]}', "metric": "net_pnl"},
    )
    sweep = BacktestSweep.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/sweeps/{sweep.pk}/")
    url = reverse("strategies:sweep", args=[world.org.slug, sweep.pk])
    page = client.get(url).content.decode()
    assert "0 of 4 runs finished" in page and "every 2s" in page
    for run in sweep.runs.all():
        tasks.run_backtest(run.pk)
    part = client.get(url, {"part": "results"}, **HTMX).content.decode()
    assert part.lstrip().startswith('<div id="sweep-results"')
    assert "4 of 4 runs finished" in part and "every 2s" not in part
    ranks = [int(x) for x in re.findall(r'data-label="Rank">(\d+)<', part)]
    assert ranks == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("grid", "status", "text"),
    [
        ('{"fast": [1, 2, 3, 4, 5], "slow": [8, 13, 21]}', 422, "15 combinations"),
        ('{"fast": [3, 9]}', 422, "must be shorter than slow"),
        ("not json", 400, "not valid JSON"),
        ('{"fast": []}', 422, "non-empty list"),
    ],
)
def test_a_bad_or_oversize_grid_is_refused_on_the_form(world, ema, sent, settings, grid, status, text):
    settings.STRATEGIES_SWEEP_MAX_RUNS = 10
    response = _client(world.trader).post(
        reverse("strategies:sweep-new", args=[world.org.slug, ema.pk]), FORM | {"grid": grid, "metric": "sharpe"}
    )
    html = response.content.decode()
    assert response.status_code == status and text in html and 'data-field-error="grid"' in html
    assert not BacktestSweep.objects.exists()


def test_the_backtests_list_shows_runs_and_sweeps(world, ema, sent):
    client = _client(world.viewer)
    run = _run(world, ema)
    page = client.get(reverse("strategies:backtests", args=[world.org.slug])).content.decode()
    assert f'id="backtest-{run.pk}"' in page and "Compare" in page
