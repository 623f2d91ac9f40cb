"""REST API v1 for strategies: definitions CRUD, deployments (create, lifecycle, positions, orders,
log, P&L), the webhook secret and algo ids; refusals as {"code", "message", "extra"} with a 4xx."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from strategies.models import AlgoId, Deployment, StrategyDefinition
from tests.otp_session import login_with_otp

pytestmark = pytest.mark.django_db

RULE = {
    "instrument": {"exchange": "NSE", "symbol": "RELIANCE"},
    "timeframe": 5,
    "quantity": 1,
    "indicators": {"fast": {"type": "ema", "period": 9}, "slow": {"type": "ema", "period": 21}},
    "entry": {"left": {"indicator": "fast"}, "op": "crosses_above", "right": {"indicator": "slow"}},
}


class Api:
    def __init__(self, user, slug: str) -> None:
        self.client = login_with_otp(Client(), user)
        self.base = f"/api/v1/orgs/{slug}"

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body) if body is not None else None
        return self.client.generic(method, self.base + path, data or "", content_type="application/json")


@pytest.fixture
def api(world):
    return Api(world.trader, world.org.slug)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] == code
    return body


def test_a_rule_strategy_is_created_read_changed_and_deleted(api, world):
    created = api.call("POST", "/strategies", {"name": "EMA cross", "kind": "rule", "params": RULE})
    assert created.status_code == 201, created.content
    definition_id = created.json()["id"]
    assert api.call("GET", f"/strategies/{definition_id}").json()["params"]["timeframe"] == 5
    changed = api.call("PATCH", f"/strategies/{definition_id}", {"params": RULE | {"timeframe": 15}})
    assert changed.status_code == 200 and changed.json()["params"]["timeframe"] == 15
    assert [d["name"] for d in api.call("GET", "/strategies").json()] == ["EMA cross"]
    assert api.call("DELETE", f"/strategies/{definition_id}").status_code == 204
    assert not StrategyDefinition.objects.exists()


def test_rule_json_that_fails_its_schema_is_refused_with_422_naming_the_field(api):
    bad = RULE | {"indicators": {"fast": {"type": "ema", "period": 0}, "slow": {"type": "ema", "period": 21}}}
    body = _error(
        api.call("POST", "/strategies", {"name": "X", "kind": "rule", "params": bad}), 422, "strategy_invalid"
    )
    assert body["extra"]["field"] == "indicators.fast.period"
    assert not StrategyDefinition.objects.exists()


def test_a_body_of_the_wrong_shape_is_refused_with_422(api):
    _error(api.call("POST", "/strategies", {"name": "X", "kind": "rule", "params": [1]}), 422, "validation_error")
    _error(api.call("POST", "/strategies", {"name": "X", "kind": "rule", "oops": 1}), 422, "validation_error")


def test_a_strategy_a_deployment_was_made_from_cannot_be_deleted(api, definition, make_deployment):
    make_deployment()
    _error(api.call("DELETE", f"/strategies/{definition.pk}"), 409, "strategy_in_use")


def test_a_deployment_is_created_run_and_stopped_through_the_api(api, world, definition):
    created = api.call(
        "POST",
        "/deployments",
        {
            "definition_id": definition.pk,
            "name": "Buyer",
            "mode": "paper",
            "accounts": [{"account_id": world.account.pk, "multiplier": 3}],
            "max_loss": "5000.50",
            "square_off_time": "15:00",
            "webhook_allowed_ips": ["52.89.214.238"],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "created" and body["accounts"] == [
        {"account_id": world.account.pk, "multiplier": 3, "status": "active"}
    ]
    assert Decimal(body["max_loss"]) == Decimal("5000.50")
    assert body["webhook_url"].endswith(f"/hooks/strategies/{Deployment.objects.get().webhook_token}/")
    path = f"/deployments/{body['id']}"
    assert api.call("POST", path + "/start").json()["status"] == "running"
    assert api.call("POST", path + "/pause", {"reason": "lunch"}).json()["status"] == "paused"
    _error(api.call("POST", path + "/pause"), 409, "deployment_state_conflict")
    assert api.call("POST", path + "/resume").json()["status"] == "running"
    for read in ("positions", "orders", "log"):
        assert isinstance(api.call("GET", f"{path}/{read}").json(), list)
    assert api.call("GET", path + "/pnl").json()["total"] in ("0", "0.0000", 0)
    secret = api.call("POST", path + "/webhook-secret").json()
    assert secret["secret"] and secret["webhook_url"] == body["webhook_url"]
    assert api.call("POST", path + "/stop").json()["status"] == "stopped"


def test_deploying_refuses_bad_settings_naming_the_field(api, world, definition):
    base = {
        "definition_id": definition.pk,
        "name": "X",
        "mode": "paper",
        "accounts": [{"account_id": world.account.pk}],
    }
    assert (
        _error(api.call("POST", "/deployments", base | {"max_loss": "-1"}), 422, "deployment_invalid")["extra"]["field"]
        == "max_loss"
    )
    body = _error(api.call("POST", "/deployments", base | {"webhook_allowed_ips": ["nope"]}), 422, "deployment_invalid")
    assert body["extra"]["field"] == "webhook_allowed_ips"
    body = _error(api.call("POST", "/deployments", base | {"definition_id": 999999}), 422, "deployment_invalid")
    assert body["extra"]["field"] == "definition_id"
    _error(api.call("POST", "/deployments", base | {"mode": "live"}), 422, "deployment_mode_mismatch")
    assert not Deployment.objects.exists()


def test_a_viewer_reads_deployments_but_may_not_run_them(world, make_deployment):
    deployment = make_deployment()
    viewer = Api(world.viewer, world.org.slug)
    assert viewer.call("GET", f"/deployments/{deployment.pk}").json()["status"] == "running"
    _error(viewer.call("POST", f"/deployments/{deployment.pk}/stop"), 403, "strategy_forbidden")


def test_another_organisations_records_are_not_found(world, make_deployment):
    from accounts.models import Membership, Organisation

    deployment = make_deployment()
    other = Organisation.objects.create(name="Other", slug="other")
    Membership.objects.create(user=world.trader, organisation=other, role="trader")
    outsider = Api(world.trader, "other")
    _error(outsider.call("GET", f"/deployments/{deployment.pk}"), 404, "deployment_not_found")
    _error(outsider.call("GET", "/deployments/99999999999999999999"), 404, "deployment_not_found")


def test_only_owners_and_admins_manage_algo_ids(world, api):
    _error(api.call("POST", "/algo-ids", {"code": "NSE-1"}), 403, "algo_id_forbidden")
    owner = Api(world.owner, world.org.slug)
    created = owner.call("POST", "/algo-ids", {"code": "NSE-1", "description": "approved"})
    assert created.status_code == 201
    _error(owner.call("POST", "/algo-ids", {"code": "NSE-1"}), 409, "algo_id_taken")
    _error(owner.call("POST", "/algo-ids", {"code": "bad code!"}), 422, "algo_id_invalid")
    deactivated = owner.call("POST", f"/algo-ids/{created.json()['id']}/deactivate")
    assert deactivated.json()["is_active"] is False and not AlgoId.objects.get().is_active
    assert [a["code"] for a in api.call("GET", "/algo-ids").json()] == ["NSE-1"]


def test_a_square_off_time_left_out_is_15_15_and_an_explicit_null_is_none(api, world, definition):
    def create(name, **schedule):
        body = {
            "definition_id": definition.pk,
            "name": name,
            "mode": "paper",
            "accounts": [{"account_id": world.account.pk, "multiplier": 1}],
            **schedule,
        }
        return api.call("POST", "/deployments", body)

    assert create("Default").json()["square_off_time"] == "15:15:00"
    assert create("None", square_off_time=None).json()["square_off_time"] is None
    _error(create("No start", start_time=None), 422, "deployment_invalid")
