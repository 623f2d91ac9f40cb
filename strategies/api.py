"""REST API v1 for strategies (mounted at /api/v1/ in config/api.py), the API twin of the strategies
pages: definitions, deployments (created, started, paused, resumed, stopped; their positions, orders,
log and P&L), the webhook secret, and the organisation's algo ids.

Every route reaches the organisation through accounts.selectors.organisation_get_for_user: another
organisation, or one the caller is not a member of, is 404 ``organisation_not_found``; a definition,
deployment or algo id of another organisation is 404 too. Reads are open to every member (Viewers
read); writes need an Owner, Admin or Trader (403 ``strategy_forbidden``), algo ids an Owner or Admin
(403 ``algo_id_forbidden``), as the services decide; a deployment's accounts are reached through
``brokers.selectors.account_get_for_user(access="trade")``. Parameters and rule JSON that fail their
schema are 422 ``strategy_invalid`` naming the field in ``extra["field"]``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Status

from accounts.auth import SCOPE_TRADE, require_scope
from accounts.selectors import organisation_get_for_user
from core.api_errors import errors
from strategies import selectors
from strategies.errors import (
    AlgoIdInvalid,
    AlgoIdNotFound,
    DeploymentInvalid,
    DeploymentNotFound,
    StrategyForbidden,
    StrategyNotFound,
)
from strategies.models import AlgoId, Deployment, StrategyDefinition
from strategies.schemas import (
    MAX_ID,
    AlgoIdIn,
    AlgoIdOut,
    DefinitionIn,
    DefinitionOut,
    DefinitionPatch,
    DeploymentIn,
    DeploymentOrderOut,
    DeploymentOut,
    EventOut,
    PnlOut,
    PositionOut,
    ReasonIn,
    WebhookSecretOut,
)
from strategies.services import algo_ids, definitions, deployments
from strategies.services.access import WRITERS, require_role
from strategies.services.signals import clean_allowed_ips, webhook_allowed_ips_set, webhook_secret_rotate

router = Router(tags=["strategies"])

LIFECYCLE = {
    "start": deployments.deployment_start,
    "pause": deployments.deployment_pause,
    "resume": deployments.deployment_resume,
    "stop": deployments.deployment_stop,
    "emergency-stop": deployments.deployment_emergency_stop,
}
MAX_LISTED = 500  # deployments in one answer, newest first
LIMIT_FIELDS = ("max_loss", "max_orders", "max_open_positions", "mtm_stop_loss", "mtm_target", "trailing_stop")
SCHEDULE_FIELDS = ("start_time", "end_time", "square_off_time")


def _organisation(request: HttpRequest, slug: str):
    organisation, _ = organisation_get_for_user(user=request.user, slug=slug)
    return organisation


def _definition(request: HttpRequest, slug: str, definition_id: int) -> StrategyDefinition:
    organisation = _organisation(request, slug)
    definition = (
        StrategyDefinition.objects.filter(organisation=organisation, pk=definition_id).first()
        if 0 < definition_id <= MAX_ID
        else None
    )
    if definition is None:
        raise StrategyNotFound(f"Strategy {definition_id} was not found.", extra={"definition_id": definition_id})
    return definition


def _deployment(request: HttpRequest, slug: str, deployment_id: int) -> Deployment:
    organisation = _organisation(request, slug)
    if not 0 < deployment_id <= MAX_ID:
        raise DeploymentNotFound("Deployment not found.", extra={"deployment_id": deployment_id})
    deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id)
    if deployment.organisation_id != organisation.pk:
        raise DeploymentNotFound("Deployment not found.", extra={"deployment_id": deployment_id})
    return deployment


def webhook_url(request: HttpRequest, deployment: Deployment) -> str:
    return request.build_absolute_uri(reverse("strategies:webhook", args=[deployment.webhook_token]))


def deployment_out(request: HttpRequest, deployment: Deployment) -> dict[str, Any]:
    fields = {name: getattr(deployment, name) for name in DeploymentOut.model_fields if hasattr(deployment, name)}
    return fields | {
        "definition_id": deployment.definition_id,
        "algo_id": deployment.algo_id.code if deployment.algo_id_id else None,
        "accounts": list(deployment.accounts.order_by("pk").values("account_id", "multiplier", "status")),
        "webhook_url": webhook_url(request, deployment),
        "webhook_allowed_ips": deployment.webhook_allowed_ips or [],
    }


def _raw_numbers(request: HttpRequest) -> dict[str, Any]:
    """The body's limits exactly as sent (ninja's parser reads numbers as floats)."""
    raw = json.loads(request.body, parse_float=Decimal)
    return {name: raw.get(name) for name in LIMIT_FIELDS if raw.get(name) is not None}


# --- definitions -------------------------------------------------------------------------------------------
@router.get("/orgs/{slug}/strategies", response=list[DefinitionOut], summary="The organisation's strategies")
def definition_list(request: HttpRequest, slug: str):
    return StrategyDefinition.objects.filter(organisation=_organisation(request, slug)).order_by("name")


@router.post("/orgs/{slug}/strategies", response={201: DefinitionOut, **errors(403, 409)}, summary="Create a strategy")
def definition_create(request: HttpRequest, slug: str, body: DefinitionIn):
    """422 ``strategy_unknown`` or ``strategy_invalid`` (``extra["field"]``: the parameter's dotted
    path, e.g. ``entry.0.left``) writes nothing; 409 ``strategy_name_taken``."""
    require_scope(request, SCOPE_TRADE)
    definition = definitions.strategy_create(
        actor=request.user,
        organisation=_organisation(request, slug),
        name=body.name,
        kind=body.kind,
        params=body.params,
        description=body.description,
    )
    return Status(201, definition)


@router.get("/orgs/{slug}/strategies/{definition_id}", response=DefinitionOut, summary="One strategy")
def definition_get(request: HttpRequest, slug: str, definition_id: int):
    return _definition(request, slug, definition_id)


@router.patch(
    "/orgs/{slug}/strategies/{definition_id}",
    response={200: DefinitionOut, **errors(403, 409)},
    summary="Change a strategy",
)
def definition_update(request: HttpRequest, slug: str, definition_id: int, body: DefinitionPatch):
    require_scope(request, SCOPE_TRADE)
    return definitions.strategy_update(
        actor=request.user,
        definition=_definition(request, slug, definition_id),
        name=body.name,
        params=body.params,
        description=body.description,
    )


@router.delete(
    "/orgs/{slug}/strategies/{definition_id}", response={204: None, **errors(403, 409)}, summary="Delete a strategy"
)
def definition_delete(request: HttpRequest, slug: str, definition_id: int):
    """409 ``strategy_in_use`` while any deployment was made from it (they keep their parameters)."""
    require_scope(request, SCOPE_TRADE)
    definitions.strategy_delete(actor=request.user, definition=_definition(request, slug, definition_id))
    return Status(204, None)


# --- deployments -------------------------------------------------------------------------------------------
@router.get(
    "/orgs/{slug}/deployments", response=list[DeploymentOut], summary="The organisation's deployments, newest first"
)
def deployment_list(request: HttpRequest, slug: str):
    organisation = _organisation(request, slug)
    rows = selectors.deployment_list_for_user(user=request.user).filter(organisation=organisation)
    return [deployment_out(request, d) for d in rows[:MAX_LISTED]]


@router.post(
    "/orgs/{slug}/deployments",
    response={201: DeploymentOut, **errors(403, 404, 409)},
    summary="Deploy a strategy on accounts",
)
def deployment_create(request: HttpRequest, slug: str, body: DeploymentIn):
    """The accounts must be ones the caller may trade (404 otherwise); 422 ``deployment_invalid`` names
    the refused field (``definition_id`` for a strategy not of this organisation);
    ``deployment_mode_mismatch`` when paper and live accounts would mix."""
    require_scope(request, SCOPE_TRADE)
    organisation = _organisation(request, slug)
    require_role(
        user=request.user, organisation_id=organisation.pk, roles=WRITERS, error=StrategyForbidden, what="deploy"
    )
    definition = StrategyDefinition.objects.filter(organisation=organisation, pk=body.definition_id).first()
    if definition is None:
        raise DeploymentInvalid("No such strategy in this organisation.", extra={"field": "definition_id"})
    allowed_ips = clean_allowed_ips(body.webhook_allowed_ips)
    algo = None
    if body.algo_id is not None:
        algo = AlgoId.objects.filter(organisation=organisation, pk=body.algo_id).first()
        if algo is None:
            raise AlgoIdInvalid("No such algo id in this organisation.", extra={"field": "algo_id"})
    # A time left out takes the default; an explicit null square-off time means none (start and end need one).
    schedule = {name: getattr(body, name) for name in SCHEDULE_FIELDS if name in body.model_fields_set}
    deployment = deployments.deployment_create(
        actor=request.user,
        definition=definition,
        name=body.name,
        mode=body.mode,
        accounts=[(row.account_id, row.multiplier) for row in body.accounts],
        algo_id=algo,
        **schedule,
        **_raw_numbers(request),
    )
    if allowed_ips:
        webhook_allowed_ips_set(actor=request.user, deployment=deployment, allowed_ips=allowed_ips)
    return Status(201, deployment_out(request, deployment))


@router.get("/orgs/{slug}/deployments/{deployment_id}", response=DeploymentOut, summary="One deployment")
def deployment_get(request: HttpRequest, slug: str, deployment_id: int):
    return deployment_out(request, _deployment(request, slug, deployment_id))


def _lifecycle(action: str):
    step = LIFECYCLE[action]

    def act(request: HttpRequest, slug: str, deployment_id: int, body: ReasonIn | None = None):
        require_scope(request, SCOPE_TRADE)
        deployment = _deployment(request, slug, deployment_id)
        step(actor=request.user, deployment=deployment, reason=body.reason if body else "")
        deployment.refresh_from_db()
        return deployment_out(request, deployment)

    act.__name__ = f"deployment_{action.replace('-', '_')}"
    act.__doc__ = (
        f"{action.replace('-', ' ').capitalize()} the deployment; 409 ``deployment_state_conflict`` when its"
        " status does not allow it. Returns the deployment after the step."
    )
    return act


for _action in LIFECYCLE:
    router.post(
        f"/orgs/{{slug}}/deployments/{{deployment_id}}/{_action}",
        response={200: DeploymentOut, **errors(403, 409)},
        summary=f"{_action.replace('-', ' ').capitalize()} a deployment",
    )(_lifecycle(_action))


@router.post(
    "/orgs/{slug}/deployments/{deployment_id}/webhook-secret",
    response={200: WebhookSecretOut, **errors(403)},
    summary="Set a new webhook secret (shown once)",
)
def deployment_webhook_secret(request: HttpRequest, slug: str, deployment_id: int):
    require_scope(request, SCOPE_TRADE)
    deployment = _deployment(request, slug, deployment_id)
    secret = webhook_secret_rotate(actor=request.user, deployment=deployment)
    return {"webhook_url": webhook_url(request, deployment), "secret": secret}


@router.get(
    "/orgs/{slug}/deployments/{deployment_id}/positions",
    response=list[PositionOut],
    summary="A deployment's own positions",
)
def deployment_positions(request: HttpRequest, slug: str, deployment_id: int):
    return selectors.deployment_positions(deployment=_deployment(request, slug, deployment_id))


@router.get("/orgs/{slug}/deployments/{deployment_id}/pnl", response=PnlOut, summary="A deployment's P&L")
def deployment_pnl(request: HttpRequest, slug: str, deployment_id: int):
    pnl = selectors.deployment_pnl(deployment=_deployment(request, slug, deployment_id))
    return {"realised": pnl.realised, "unrealised": pnl.unrealised, "total": pnl.total, "unpriced": list(pnl.unpriced)}


@router.get(
    "/orgs/{slug}/deployments/{deployment_id}/orders",
    response=list[DeploymentOrderOut],
    summary="A deployment's orders, newest first",
)
def deployment_orders(request: HttpRequest, slug: str, deployment_id: int):
    return selectors.deployment_orders(deployment=_deployment(request, slug, deployment_id))[:500]


@router.get(
    "/orgs/{slug}/deployments/{deployment_id}/log", response=list[EventOut], summary="A deployment's log, newest first"
)
def deployment_log(request: HttpRequest, slug: str, deployment_id: int):
    return selectors.deployment_event_list(deployment=_deployment(request, slug, deployment_id))


# --- algo ids ----------------------------------------------------------------------------------------------
@router.get("/orgs/{slug}/algo-ids", response=list[AlgoIdOut], summary="The organisation's algo ids")
def algo_id_list(request: HttpRequest, slug: str):
    return AlgoId.objects.filter(organisation=_organisation(request, slug)).order_by("code")


@router.post("/orgs/{slug}/algo-ids", response={201: AlgoIdOut, **errors(403, 409)}, summary="Record an algo id")
def algo_id_create(request: HttpRequest, slug: str, body: AlgoIdIn):
    """Owner and Admin only (403 ``algo_id_forbidden``); 422 ``algo_id_invalid``; 409 ``algo_id_taken``."""
    require_scope(request, SCOPE_TRADE)
    algo = algo_ids.algo_id_create(
        actor=request.user, organisation=_organisation(request, slug), code=body.code, description=body.description
    )
    return Status(201, algo)


@router.post(
    "/orgs/{slug}/algo-ids/{algo_id}/deactivate",
    response={200: AlgoIdOut, **errors(403)},
    summary="Deactivate an algo id",
)
def algo_id_deactivate(request: HttpRequest, slug: str, algo_id: int):
    require_scope(request, SCOPE_TRADE)
    organisation = _organisation(request, slug)
    algo = AlgoId.objects.filter(organisation=organisation, pk=algo_id).first() if 0 < algo_id <= MAX_ID else None
    if algo is None:
        raise AlgoIdNotFound("No such algo id in this organisation.", extra={"algo_id": algo_id})
    return algo_ids.algo_id_deactivate(actor=request.user, algo_id=algo)
