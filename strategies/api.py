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
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Query, Router, Status

from accounts.auth import SCOPE_TRADE, require_scope
from accounts.selectors import organisation_get_for_user
from core.api_errors import ErrorOut, errors
from strategies import selectors
from strategies.errors import (
    AlgoIdInvalid,
    AlgoIdNotFound,
    BacktestForbidden,
    BacktestInvalid,
    DeploymentInvalid,
    DeploymentNotFound,
    StrategyForbidden,
    StrategyNotFound,
)
from strategies.models import AlgoId, BacktestSweep, Deployment, StrategyDefinition
from strategies.schemas import (
    MAX_ID,
    AlgoIdIn,
    AlgoIdOut,
    BacktestIn,
    BacktestOut,
    BacktestSummaryOut,
    CompareOut,
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
    SweepIn,
    SweepOut,
    SweepSummaryOut,
    WebhookSecretOut,
)
from strategies.services import algo_ids, definitions, deployments, sweeps
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


# --- backtests and sweeps ----------------------------------------------------------------------------------
COMPARED = (
    "net_pnl", "total_return", "cagr", "max_drawdown", "max_drawdown_pct", "sharpe", "sortino", "calmar",
    "trades", "win_rate", "profit_factor", "expectancy", "exposure", "charges",
)  # fmt: skip
CSV_RESPONSE = {
    200: {
        "description": "The trade list as CSV, one closed round trip a row, with a header",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def _backtest_definition(request: HttpRequest, organisation, definition_id: int) -> StrategyDefinition:
    """The organisation's definition to backtest, once the caller's role allows backtests (403 first)."""
    require_role(
        user=request.user, organisation_id=organisation.pk, roles=WRITERS, error=BacktestForbidden, what="run backtests"
    )
    definition = StrategyDefinition.objects.filter(organisation=organisation, pk=definition_id).first()
    if definition is None:
        raise BacktestInvalid("No such strategy in this organisation.", extra={"field": "definition_id"})
    return definition


def _raw_settings(request: HttpRequest) -> Any:
    """The body's settings exactly as sent (money stays Decimal; ninja's parser reads numbers as floats)."""
    return json.loads(request.body, parse_float=Decimal).get("settings")


def sweep_out(sweep: BacktestSweep, *, ranking: bool) -> dict[str, Any]:
    progress = selectors.sweep_progress(sweep_id=sweep.pk)
    out: dict[str, Any] = {
        "id": sweep.pk,
        "definition_id": sweep.definition_id,
        "grid": sweep.grid,
        "metric": sweep.metric,
        "status": sweep.status,
        "created_at": sweep.created_at,
        "progress": {**asdict(progress), "percent": progress.percent},
    }
    if ranking:
        out["ranking"] = [
            {
                "rank": row.rank,
                "backtest_id": row.run.pk,
                "status": row.run.status,
                "params": row.run.params,
                "value": row.value,
            }
            for row in selectors.sweep_ranking(sweep=sweep)
        ]
    return out


@router.get(
    "/orgs/{slug}/backtests", response=list[BacktestSummaryOut], summary="The organisation's backtests, newest first"
)
def backtest_list(request: HttpRequest, slug: str):
    organisation = _organisation(request, slug)
    return list(selectors.backtest_list(organisation_id=organisation.pk).defer("equity", "trades")[:MAX_LISTED])


@router.post("/orgs/{slug}/backtests", response={201: BacktestOut, **errors(403, 422)}, summary="Queue a backtest")
def backtest_create(request: HttpRequest, slug: str, body: BacktestIn):
    """Queues a backtest of a definition (its parameters, or ``params``) over stored 1-minute candles; it
    runs on a worker and is polled at ``GET .../backtests/{id}`` (status, progress, then the report).
    422: ``strategy_invalid`` (a parameter, named), ``backtest_invalid`` (``definition_id``, an
    instrument, a date or a setting, named), ``backtest_no_data`` (no candles in the range)."""
    require_scope(request, SCOPE_TRADE)
    organisation = _organisation(request, slug)
    run = sweeps.backtest_queue(
        actor=request.user,
        definition=_backtest_definition(request, organisation, body.definition_id),
        params=body.params,
        instruments=body.instruments,
        start=body.start,
        end=body.end,
        settings=_raw_settings(request),
    )
    return Status(201, run)


@router.get(
    "/orgs/{slug}/backtests/compare",
    response={200: CompareOut, **errors(404, 422)},
    summary="Two backtests' metrics side by side",
)
def backtest_compare(
    request: HttpRequest,
    slug: str,
    a: int | None = Query(None, gt=0, le=MAX_ID, description="The first backtest's id (required)."),
    b: int | None = Query(None, gt=0, le=MAX_ID, description="The second backtest's id (required)."),
):
    """422 ``backtest_invalid`` naming ``a`` or ``b`` when one is missing; 404 for one not of the organisation."""
    organisation = _organisation(request, slug)
    for name, value in (("a", a), ("b", b)):
        if value is None:
            raise BacktestInvalid(
                f"Give the backtests to compare as ?a=<id>&b=<id>; {name} is missing.", extra={"field": name}
            )
    assert a is not None and b is not None
    first = selectors.backtest_get(organisation_id=organisation.pk, run_id=a)
    second = selectors.backtest_get(organisation_id=organisation.pk, run_id=b)
    return {
        "a": first,
        "b": second,
        "metrics": [{"metric": m, "a": first.result.get(m), "b": second.result.get(m)} for m in COMPARED],
    }


@router.get("/orgs/{slug}/backtests/{backtest_id}", response=BacktestOut, summary="One backtest and its report")
def backtest_get(request: HttpRequest, slug: str, backtest_id: int):
    return selectors.backtest_get(organisation_id=_organisation(request, slug).pk, run_id=backtest_id)


@router.get(
    "/orgs/{slug}/backtests/{backtest_id}/trades.csv",
    response={404: ErrorOut},
    openapi_extra={"responses": CSV_RESPONSE},
    summary="A backtest's trade list as CSV",
)
def backtest_trades_csv(request: HttpRequest, slug: str, backtest_id: int):
    run = selectors.backtest_get(organisation_id=_organisation(request, slug).pk, run_id=backtest_id)
    response = HttpResponse(selectors.backtest_csv(run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-trades.csv"'
    return response


@router.get("/orgs/{slug}/sweeps", response=list[SweepSummaryOut], summary="The organisation's sweeps, newest first")
def sweep_list(request: HttpRequest, slug: str):
    organisation = _organisation(request, slug)
    return [sweep_out(s, ranking=False) for s in selectors.sweep_list(organisation_id=organisation.pk)[:MAX_LISTED]]


@router.post("/orgs/{slug}/sweeps", response={201: SweepOut, **errors(403, 422)}, summary="Start a parameter sweep")
def sweep_create(request: HttpRequest, slug: str, body: SweepIn):
    """One backtest per combination of ``grid``'s values, each on a worker, ranked by ``metric``.
    422: ``sweep_too_large`` (more combinations than the server's maximum; ``extra`` says both numbers),
    ``sweep_invalid`` (the grid or metric, named), ``strategy_invalid`` (the first combination the schema
    refuses, with its field and ``extra["combination"]``), and the backtest's own refusals."""
    require_scope(request, SCOPE_TRADE)
    organisation = _organisation(request, slug)
    sweep = sweeps.sweep_create(
        actor=request.user,
        definition=_backtest_definition(request, organisation, body.definition_id),
        grid=body.grid,
        metric=body.metric,
        instruments=body.instruments,
        start=body.start,
        end=body.end,
        settings=_raw_settings(request),
    )
    return Status(201, sweep_out(sweep, ranking=True))


@router.get("/orgs/{slug}/sweeps/{sweep_id}", response=SweepOut, summary="A sweep: its progress and ranked runs")
def sweep_get(request: HttpRequest, slug: str, sweep_id: int):
    sweep = selectors.sweep_get(organisation_id=_organisation(request, slug).pk, sweep_id=sweep_id)
    return sweep_out(sweep, ranking=True)
