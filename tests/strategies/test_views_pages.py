"""The strategies pages: the list, the rule builder (server-side validation next to the field, plain
POST and HTMX), deploying, a deployment's page with its live part and lifecycle buttons, algo ids."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from strategies.models import AlgoId, Deployment, StrategyDefinition
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _client(user) -> Client:
    return login_with_otp(Client(), user)


def _rule_post(**overrides) -> dict[str, str]:
    data = {
        "name": "EMA cross",
        "exchange": "NSE",
        "symbol": "reliance",
        "timeframe": "5",
        "product": "MIS",
        "side": "long",
        "size_kind": "quantity",
        "size": "2",
        "indicator_rows": "2",
        "indicator-0-name": "fast",
        "indicator-0-type": "ema",
        "indicator-0-period": "9",
        "indicator-1-name": "slow",
        "indicator-1-type": "ema",
        "indicator-1-period": "21",
        "entry_rows": "1",
        "entry_combine": "all",
        "entry-0-left": "fast",
        "entry-0-op": "crosses_above",
        "entry-0-right": "slow",
        "exit_rows": "1",
        "exit_combine": "any",
        "exit-0-left": "fast",
        "exit-0-op": "crosses_below",
        "exit-0-right": "slow",
        "stop_loss_kind": "percent",
        "stop_loss": "1.5",
        "target_kind": "points",
        "target": "20",
        "trailing_stop_kind": "percent",
        "exit_at": "15:10",
        "save": "1",
    }
    return data | overrides


def _field_error(html: str, name: str) -> str:
    match = re.search(rf'data-field-error="{re.escape(name)}">([^<]*)<', html)
    assert match, f"no error shown next to {name}"
    return match.group(1)


def test_the_list_shows_the_organisations_strategies_and_deployments_with_their_status(world, make_deployment):
    deployment = make_deployment()
    response = _client(world.viewer).get(reverse("strategies:list", args=[world.org.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Buyer" in html and f'id="deployment-{deployment.pk}"' in html and "Running" in html
    assert "New rule strategy" not in html  # a Viewer reads only


def test_the_nav_link_leads_to_the_users_organisations_strategies(world):
    response = _client(world.trader).get(reverse("strategies:home"))
    assert response.status_code == 302 and response["Location"] == reverse("strategies:list", args=[world.org.slug])


def test_a_rule_built_in_the_form_is_saved_as_rule_json_and_leads_to_deploying_it(world):
    response = _client(world.trader).post(reverse("strategies:rule-builder", args=[world.org.slug]), _rule_post())
    definition = StrategyDefinition.objects.get(name="EMA cross")
    assert response.status_code == 302
    assert response["Location"] == reverse("strategies:deploy", args=[world.org.slug, definition.pk])
    assert definition.kind == "rule"
    params = definition.params
    assert params["instrument"] == {"exchange": "NSE", "symbol": "RELIANCE"}
    assert params["quantity"] == 2 and params["timeframe"] == 5
    assert (params["indicators"]["fast"]["type"], params["indicators"]["fast"]["period"]) == ("ema", 9)
    assert params["entry"]["all"][0]["op"] == "crosses_above"
    assert params["stop_loss"]["percent"] == "1.5" and params["target"]["points"] == "20"


def test_a_refused_rule_shows_the_error_next_to_its_field_and_saves_nothing(world):
    url = reverse("strategies:rule-builder", args=[world.org.slug])
    response = _client(world.trader).post(url, _rule_post(**{"indicator-1-period": "0"}))
    assert response.status_code == 422
    assert _field_error(response.content.decode(), "indicator-1-period")
    assert not StrategyDefinition.objects.exists()


def test_a_condition_on_an_unknown_indicator_is_marked_on_its_row(world):
    url = reverse("strategies:rule-builder", args=[world.org.slug])
    response = _client(world.trader).post(url, _rule_post(**{"entry-0-right": "slowest"}), **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="rule-form"')  # HTMX gets the form alone
    assert "slowest" in _field_error(html, "entry-0-right")


def test_an_unknown_symbol_is_marked_next_to_the_symbol(world):
    url = reverse("strategies:rule-builder", args=[world.org.slug])
    response = _client(world.trader).post(url, _rule_post(symbol="NOSUCH"))
    assert response.status_code == 422 and "symbol master" in _field_error(response.content.decode(), "symbol")


def test_adding_and_removing_condition_rows_posts_the_form_back_without_saving(world):
    url = reverse("strategies:rule-builder", args=[world.org.slug])
    client = _client(world.trader)
    added = client.post(url, _rule_post(add="entry", save=""), **HTMX)
    assert added.status_code == 200 and 'name="entry-1-left"' in added.content.decode()
    removed = client.post(url, _rule_post(remove="exit-0", save=""), **HTMX)
    assert 'name="exit-0-left"' not in removed.content.decode()
    assert not StrategyDefinition.objects.exists()


def test_a_viewer_cannot_save_a_strategy(world):
    url = reverse("strategies:rule-builder", args=[world.org.slug])
    response = _client(world.viewer).post(url, _rule_post())
    assert response.status_code == 403 and not StrategyDefinition.objects.exists()


def test_deploying_shows_the_deployment_with_its_webhook_secret_once(world, definition):
    url = reverse("strategies:deploy", args=[world.org.slug, definition.pk])
    data = {
        "name": "Buyer x2",
        "mode": "paper",
        f"account-{world.account.pk}": "on",
        f"multiplier-{world.account.pk}": "2",
        "start_time": "09:15",
        "end_time": "15:30",
        "square_off_time": "15:15",
        "max_orders": "10",
        "webhook_allowed_ips": "52.89.214.238\n34.212.75.30",
    }
    response = _client(world.trader).post(url, data)
    assert response.status_code == 201
    deployment = Deployment.objects.get(name="Buyer x2")
    assert deployment.accounts.get().multiplier == 2 and deployment.max_orders == 10
    assert deployment.webhook_allowed_ips == ["52.89.214.238/32", "34.212.75.30/32"]
    html = response.content.decode()
    secret = re.search(r'id="webhook-secret">([^<]+)<', html).group(1)
    assert deployment.webhook_secret_sha256 and secret not in deployment.webhook_secret_sha256
    page = _client(world.trader).get(reverse("strategies:deployment", args=[world.org.slug, deployment.pk]))
    assert secret not in page.content.decode()


def test_deploying_refuses_a_schedule_that_ends_before_it_starts_next_to_the_field(world, definition):
    url = reverse("strategies:deploy", args=[world.org.slug, definition.pk])
    data = {"name": "Bad", "mode": "paper", f"account-{world.account.pk}": "on", "start_time": "15:00"}
    response = _client(world.trader).post(url, data | {"end_time": "10:00"})
    assert response.status_code == 422 and _field_error(response.content.decode(), "end_time")
    assert not Deployment.objects.exists()


def test_the_lifecycle_buttons_run_the_deployment_and_htmx_gets_the_controls_back(world, make_deployment):
    deployment = make_deployment(start=False)
    client = _client(world.trader)
    args = [world.org.slug, deployment.pk]
    started = client.post(reverse("strategies:deployment-start", args=args))
    assert started.status_code == 302 and Deployment.objects.get().status == "running"
    paused = client.post(reverse("strategies:deployment-pause", args=args), **HTMX)
    assert paused.status_code == 200 and 'id="deployment-controls"' in paused.content.decode()
    assert "Resume" in paused.content.decode() and Deployment.objects.get().status == "paused"
    again = client.post(reverse("strategies:deployment-pause", args=args), **HTMX)
    assert again.status_code == 409 and "deployment_state_conflict" in again.content.decode()
    client.post(reverse("strategies:deployment-stop", args=args))
    assert Deployment.objects.get().status == "stopped"


def test_a_viewer_sees_no_buttons_and_is_refused_a_lifecycle_post(world, make_deployment):
    deployment = make_deployment()
    client = _client(world.viewer)
    page = client.get(reverse("strategies:deployment", args=[world.org.slug, deployment.pk]))
    assert page.status_code == 200 and "Emergency stop" not in page.content.decode()
    refused = client.post(reverse("strategies:deployment-stop", args=[world.org.slug, deployment.pk]))
    assert refused.status_code == 403 and Deployment.objects.get().status == "running"


def test_the_live_part_shows_pnl_positions_orders_and_the_log(world, make_deployment):
    deployment = make_deployment()
    response = _client(world.trader).get(reverse("strategies:deployment-live", args=[world.org.slug, deployment.pk]))
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="deployment-live"')
    assert 'hx-trigger="every 3s"' in html and 'id="equity-marks"' in html and "started" in html


def test_another_organisations_deployment_is_not_found(world, make_deployment):
    from accounts.models import Organisation

    deployment = make_deployment()
    Organisation.objects.create(name="Other", slug="other")
    response = _client(world.trader).get(reverse("strategies:deployment", args=["other", deployment.pk]))
    assert response.status_code == 404


def test_owners_manage_algo_ids_and_traders_may_not(world):
    client = _client(world.owner)
    added = client.post(reverse("strategies:algo-id-add", args=[world.org.slug]), {"code": "NSE-ALGO-1"})
    assert added.status_code == 302
    algo = AlgoId.objects.get(code="NSE-ALGO-1")
    client.post(reverse("strategies:algo-id-deactivate", args=[world.org.slug, algo.pk]))
    assert not AlgoId.objects.get().is_active
    assert _client(world.trader).get(reverse("strategies:algo-ids", args=[world.org.slug])).status_code == 403


def test_a_webhook_strategy_is_created_from_the_list_and_leads_to_deploying_it(world):
    url = reverse("strategies:webhook-strategy-new", args=[world.org.slug])
    response = _client(world.trader).post(url, {"name": "TV alerts"})
    definition = StrategyDefinition.objects.get()
    assert (definition.kind, definition.params) == ("webhook", {})
    assert response["Location"] == reverse("strategies:deploy", args=[world.org.slug, definition.pk])
    again = _client(world.trader).post(url, {"name": "TV alerts"})
    assert again.status_code == 409 and "exists already" in again.content.decode()
