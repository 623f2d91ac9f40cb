"""The strategies pages of an organisation (``orgs/<slug>/...``): its definitions and deployments, the
rule builder, deploying, each deployment's live page and lifecycle buttons, its algo ids; and the
webhook that receives signals from charting tools (``hooks/strategies/<token>/``).

Every page reaches the organisation through ``organisation_get_for_user`` (another organisation: 404)
and its deployments through ``strategies.selectors.deployment_get_for_user``. Any member reads;
writes are decided by the services (Owner, Admin, Trader; algo ids Owner and Admin: 403 otherwise),
and the buttons a role cannot use are not shown. The deployment page refreshes its live part (P&L,
positions, orders, equity curve, log) by HTMX polling every few seconds: what changes it comes from
several producers (fills through the order service, the bar-close evaluation, webhooks), none of
which this app may hook into without reaching across layers, and a GET of one fragment is cheap.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.decorators import otp_required

from accounts.errors import OrganisationNotFound
from accounts.selectors import organisation_get_for_user, organisation_list_for_user
from brokers.selectors import account_list_for_user
from core.client_ip import client_ip
from core.errors import ApplicationError
from marketdata.hours import IST
from marketdata.models import Instrument
from strategies import selectors
from strategies.errors import AlgoIdNotFound, DeploymentNotFound, StrategyNotFound
from strategies.forms import AlgoIdForm, DeployForm, RuleBuilder
from strategies.models import AlgoId, Deployment, DeploymentMark, StrategyDefinition
from strategies.services import algo_ids, definitions, deployments
from strategies.services.access import MANAGERS, WRITERS
from strategies.services.signals import (
    clean_allowed_ips,
    webhook_allowed_ips_set,
    webhook_receive,
    webhook_secret_rotate,
)

verified_required = otp_required(if_configured=False)
LIFECYCLE = {
    "start": deployments.deployment_start,
    "pause": deployments.deployment_pause,
    "resume": deployments.deployment_resume,
    "stop": deployments.deployment_stop,
    "emergency-stop": deployments.deployment_emergency_stop,
}
# Which buttons a deployment in each status shows.
ACTIONS_BY_STATUS = {
    Deployment.Status.CREATED: ("start",),
    Deployment.Status.RUNNING: ("pause", "stop", "emergency-stop"),
    Deployment.Status.PAUSED: ("resume", "stop", "emergency-stop"),
    Deployment.Status.STOPPED: (),
}
LIVE_POLL_SECONDS = 3


def _refused(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return render(request, "accounts/error.html", {"error": exc}, status=exc.status)


def _org(request: HttpRequest, slug: str):
    return organisation_get_for_user(user=request.user, slug=slug)


def _deployment(request: HttpRequest, organisation, deployment_id: int) -> Deployment:
    deployment = selectors.deployment_get_for_user(user=request.user, deployment_id=deployment_id)
    if deployment.organisation_id != organisation.pk:
        raise DeploymentNotFound("Deployment not found.", extra={"deployment_id": deployment_id})
    return deployment


def _definition(organisation, definition_id: int) -> StrategyDefinition:
    definition = StrategyDefinition.objects.filter(organisation=organisation, pk=definition_id).first()
    if definition is None:
        raise StrategyNotFound(f"Strategy {definition_id} was not found.", extra={"definition_id": definition_id})
    return definition


def _base(organisation, membership, **context) -> dict:
    return {
        "organisation": organisation,
        "membership": membership,
        "can_write": membership.role in WRITERS,
        "can_manage": membership.role in MANAGERS,
    } | context


# --- the list ----------------------------------------------------------------------------------------------
@verified_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The nav's Strategies link: the strategies of the user's organisation (the first by name)."""
    membership = organisation_list_for_user(user=request.user).first()
    if membership is None:
        return _refused(request, OrganisationNotFound("You are not a member of any organisation."))
    return redirect("strategies:list", membership.organisation.slug)


@verified_required
@require_GET
def strategies(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation, membership = _org(request, slug)
    except ApplicationError as exc:
        return _refused(request, exc)
    context = _base(
        organisation,
        membership,
        definitions=StrategyDefinition.objects.filter(organisation=organisation).order_by("name"),
        deployments=selectors.deployment_list_for_user(user=request.user)
        .filter(organisation=organisation)
        .prefetch_related("accounts__account"),
    )
    return render(request, "strategies/list.html", context)


@verified_required
@require_POST
def webhook_strategy_new(request: HttpRequest, slug: str) -> HttpResponse:
    """Create a strategy of kind ``webhook`` (its orders come from signals) and go on to deploy it; a
    refused name comes back on the list (422 or 409, 403 for a Viewer)."""
    try:
        organisation, membership = _org(request, slug)
    except ApplicationError as exc:
        return _refused(request, exc)
    try:
        definition = definitions.strategy_create(
            actor=request.user,
            organisation=organisation,
            name=request.POST.get("name", ""),
            kind="webhook",
            params={},
            description="Orders from webhook signals (TradingView, ChartInk, Amibroker).",
        )
    except ApplicationError as exc:
        if exc.status == 403:
            return _refused(request, exc)
        context = _base(
            organisation,
            membership,
            definitions=StrategyDefinition.objects.filter(organisation=organisation).order_by("name"),
            deployments=selectors.deployment_list_for_user(user=request.user).filter(organisation=organisation),
            webhook_error=exc,
            webhook_name=request.POST.get("name", "")[:100],
        )
        return render(request, "strategies/list.html", context, status=exc.status)
    return redirect("strategies:deploy", organisation.slug, definition.pk)


# --- the rule builder --------------------------------------------------------------------------------------
@verified_required
@require_http_methods(["GET", "POST"])
def rule_builder(request: HttpRequest, slug: str) -> HttpResponse:
    """Build a rule strategy: GET the empty form; POST saves it (a plain POST redirects to the list) or
    shows each refused field next to it (422). ``add``/``remove`` buttons post the form back with a
    row more or less (HTMX swaps the form)."""
    try:
        organisation, membership = _org(request, slug)
    except ApplicationError as exc:
        return _refused(request, exc)
    builder = RuleBuilder(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and builder.wants_save():
        if builder.is_valid():
            try:
                definition = definitions.strategy_create(
                    actor=request.user,
                    organisation=organisation,
                    name=builder.name,
                    kind="rule",
                    params=builder.params(),
                    description=builder.description,
                )
            except ApplicationError as exc:
                builder.add_service_error(exc)
                status = exc.status
            else:
                messages.success(request, f"{definition.name} was saved. Deploy it on your accounts below.")
                target = reverse("strategies:deploy", args=[organisation.slug, definition.pk])
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
        else:
            status = 422
    context = _base(organisation, membership, builder=builder)
    template = "strategies/rule_builder.html#rule-form" if request.htmx else "strategies/rule_builder.html"
    return render(request, template, context, status=status)


# --- deploying ---------------------------------------------------------------------------------------------
def _deploy_form(request: HttpRequest, organisation, data=None) -> DeployForm:
    accounts = account_list_for_user(user=request.user, access="trade").filter(organisation=organisation)
    algos = AlgoId.objects.filter(organisation=organisation, is_active=True).order_by("code")
    return DeployForm(data, accounts=accounts.order_by("label"), algo_ids=algos)


@verified_required
@require_http_methods(["GET", "POST"])
def deploy(request: HttpRequest, slug: str, definition_id: int) -> HttpResponse:
    """Deploy a definition on accounts the user may trade. A created deployment's page is answered at
    once, with its webhook secret shown this one time (only its SHA-256 is kept)."""
    try:
        organisation, membership = _org(request, slug)
        definition = _definition(organisation, definition_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    form = _deploy_form(request, organisation, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            algo = AlgoId.objects.filter(organisation=organisation, pk=data["algo_id"]).first()
            try:
                allowed_ips = clean_allowed_ips(data["webhook_allowed_ips"])
                deployment = deployments.deployment_create(
                    actor=request.user,
                    definition=definition,
                    name=data["name"],
                    mode=data["mode"],
                    accounts=data["accounts"],
                    algo_id=algo,
                    start_time=data["start_time"],
                    end_time=data["end_time"],
                    square_off_time=data["square_off_time"],
                    max_loss=data["max_loss"],
                    max_orders=data["max_orders"],
                    max_open_positions=data["max_open_positions"],
                    mtm_stop_loss=data["mtm_stop_loss"],
                    mtm_target=data["mtm_target"],
                    trailing_stop=data["trailing_stop"],
                )
                if allowed_ips:
                    webhook_allowed_ips_set(actor=request.user, deployment=deployment, allowed_ips=allowed_ips)
                secret = webhook_secret_rotate(actor=request.user, deployment=deployment)
            except ApplicationError as exc:
                field = exc.extra.get("field")
                form.add_error(field if field in form.fields else None, exc.message)
                status = exc.status
            else:
                return _deployment_page(request, organisation, membership, deployment, secret=secret, status=201)
        else:
            status = 400
    context = _base(organisation, membership, definition=definition, form=form)
    return render(request, "strategies/deploy.html", context, status=status)


# --- a deployment ------------------------------------------------------------------------------------------
def _marks_today(deployment: Deployment) -> list[dict]:
    start = datetime.combine(timezone.localdate(timezone=IST), datetime.min.time(), tzinfo=IST)
    return [
        {"time": int(mark.ts.timestamp()), "value": str(mark.pnl)}
        for mark in DeploymentMark.objects.filter(deployment=deployment, ts__gte=start).order_by("ts")[:1500]
    ]


def _live(deployment: Deployment) -> dict:
    positions = selectors.deployment_positions(deployment=deployment)
    open_positions = [p for p in positions if p.net_quantity]
    labels = dict(deployment.accounts.values_list("account_id", "account__label"))
    symbols = dict(
        Instrument.objects.filter(pk__in={p.instrument_id for p in open_positions}).values_list("pk", "tradingsymbol")
    )
    return {
        "pnl": selectors.pnl_of(positions),
        "positions": [
            {"position": p, "account": labels.get(p.account_id, p.account_id), "symbol": symbols.get(p.instrument_id)}
            for p in open_positions
        ],
        "orders": selectors.deployment_orders(deployment=deployment)[:50],
        "events": selectors.deployment_event_list(deployment=deployment, limit=50),
        "marks": _marks_today(deployment),
        "poll_seconds": LIVE_POLL_SECONDS,
        "polled_at": timezone.now(),
    }


def _deployment_context(request, organisation, membership, deployment, **extra) -> dict:
    return _base(
        organisation,
        membership,
        deployment=deployment,
        accounts=deployment.accounts.select_related("account").order_by("pk"),
        actions=ACTIONS_BY_STATUS.get(deployment.status, ()),
        webhook_url=request.build_absolute_uri(reverse("strategies:webhook", args=[deployment.webhook_token])),
        **_live(deployment),
        **extra,
    )


def _deployment_page(request, organisation, membership, deployment, *, secret=None, status=200, error=None):
    context = _deployment_context(request, organisation, membership, deployment, secret=secret, error=error)
    return render(request, "strategies/deployment.html", context, status=status)


@verified_required
@require_GET
def deployment(request: HttpRequest, slug: str, deployment_id: int) -> HttpResponse:
    try:
        organisation, membership = _org(request, slug)
        found = _deployment(request, organisation, deployment_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    return _deployment_page(request, organisation, membership, found)


@verified_required
@require_GET
def deployment_live(request: HttpRequest, slug: str, deployment_id: int) -> HttpResponse:
    """The live part of the deployment page (P&L, positions, orders, equity curve, log), polled by HTMX."""
    try:
        organisation, membership = _org(request, slug)
        found = _deployment(request, organisation, deployment_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    context = _deployment_context(request, organisation, membership, found)
    return render(request, "strategies/deployment.html#live", context)


@verified_required
@require_POST
def deployment_action(request: HttpRequest, slug: str, deployment_id: int, action: str) -> HttpResponse:
    """Start, pause, resume, stop or emergency-stop (the service checks the role: 403, and the status:
    409). HTMX gets the controls back; a plain POST is redirected to the deployment's page."""
    try:
        organisation, membership = _org(request, slug)
        found = _deployment(request, organisation, deployment_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    error = None
    try:
        LIFECYCLE[action](actor=request.user, deployment=found, reason=request.POST.get("reason", "")[:300])
    except ApplicationError as exc:
        error = exc
    found.refresh_from_db()
    if not request.htmx:
        if error is not None:
            return _deployment_page(request, organisation, membership, found, error=error, status=error.status)
        return redirect("strategies:deployment", organisation.slug, found.pk)
    context = _deployment_context(request, organisation, membership, found, error=error)
    return render(request, "strategies/deployment.html#controls", context, status=error.status if error else 200)


@verified_required
@require_POST
def deployment_webhook_secret(request: HttpRequest, slug: str, deployment_id: int) -> HttpResponse:
    """A new webhook secret, shown in the answer this once; the old one stops working."""
    try:
        organisation, membership = _org(request, slug)
        found = _deployment(request, organisation, deployment_id)
        secret = webhook_secret_rotate(actor=request.user, deployment=found)
    except ApplicationError as exc:
        return _refused(request, exc)
    if request.htmx:
        context = _deployment_context(request, organisation, membership, found, secret=secret)
        return render(request, "strategies/deployment.html#webhook", context)
    return _deployment_page(request, organisation, membership, found, secret=secret)


# --- algo ids ----------------------------------------------------------------------------------------------
def _algo_page(request, organisation, membership, form, *, status=200):
    rows = AlgoId.objects.filter(organisation=organisation).order_by("-is_active", "code")
    context = _base(organisation, membership, rows=rows, form=form)
    return render(request, "strategies/algo_ids.html", context, status=status)


def _manager(request: HttpRequest, slug: str):
    return organisation_get_for_user(user=request.user, slug=slug, manage=True)


@verified_required
@require_GET
def algo_id_list(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation, membership = _manager(request, slug)
    except ApplicationError as exc:
        return _refused(request, exc)
    return _algo_page(request, organisation, membership, AlgoIdForm())


@verified_required
@require_POST
def algo_id_add(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        organisation, membership = _manager(request, slug)
    except ApplicationError as exc:
        return _refused(request, exc)
    form = AlgoIdForm(request.POST)
    if not form.is_valid():
        return _algo_page(request, organisation, membership, form, status=400)
    try:
        algo = algo_ids.algo_id_create(
            actor=request.user,
            organisation=organisation,
            code=form.cleaned_data["code"],
            description=form.cleaned_data["description"],
        )
    except ApplicationError as exc:
        form.add_error(exc.extra.get("field") if exc.extra.get("field") in form.fields else None, exc.message)
        return _algo_page(request, organisation, membership, form, status=exc.status)
    messages.success(request, f"Algo id {algo.code} was added.")
    return redirect("strategies:algo-ids", organisation.slug)


@verified_required
@require_POST
def algo_id_deactivate(request: HttpRequest, slug: str, algo_id: int) -> HttpResponse:
    try:
        organisation, _ = _manager(request, slug)
        algo = AlgoId.objects.filter(organisation=organisation, pk=algo_id).first()
        if algo is None:
            raise AlgoIdNotFound("No such algo id in this organisation.", extra={"algo_id": algo_id})
        algo_ids.algo_id_deactivate(actor=request.user, algo_id=algo, reason=request.POST.get("reason", "")[:300])
    except ApplicationError as exc:
        return _refused(request, exc)
    messages.success(request, f"Algo id {algo.code} was deactivated.")
    return redirect("strategies:algo-ids", organisation.slug)


# --- the webhook -------------------------------------------------------------------------------------------
@csrf_exempt  # called by TradingView, ChartInk and scripts: no cookies, no CSRF token; the secret is the check
@require_POST
def webhook(request: HttpRequest, token: str) -> JsonResponse:
    """A signal for the deployment whose webhook token is ``token``: JSON in, JSON out, every refusal
    as {"code", "message", "extra"} with its 4xx (strategies.services.signals)."""
    try:
        answer = webhook_receive(
            token=token,
            body=request.body,
            header_secret=request.headers.get("X-Webhook-Secret"),
            query={key: request.GET.get(key, "") for key in request.GET},
            ip=client_ip(request),
        )
    except ApplicationError as error:
        headers = {}
        if error.status == 429 and error.extra.get("retry_after") is not None:
            headers["Retry-After"] = str(max(1, round(float(error.extra["retry_after"]) + 0.5)))
        return JsonResponse(error.as_dict(), status=error.status, headers=headers)
    response = JsonResponse(answer.body, status=answer.status)
    if answer.duplicate:
        response["X-Webhook-Duplicate"] = "true"
    return response
