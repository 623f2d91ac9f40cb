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

from django.conf import settings
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
from core.parse import int_or_none
from marketdata.hours import IST
from marketdata.models import Instrument
from strategies import selectors
from strategies.errors import (
    AlgoIdNotFound,
    BacktestInvalid,
    DeploymentNotFound,
    StrategyForbidden,
    StrategyNotFound,
)
from strategies.forms import AlgoIdForm, BacktestForm, DeployForm, RuleBuilder, SweepForm, backtest_form_field
from strategies.models import AlgoId, BacktestRun, Deployment, DeploymentMark, StrategyDefinition
from strategies.services import algo_ids, definitions, deployments, sweeps
from strategies.services.access import MANAGERS, WRITERS, require_role
from strategies.services.signals import (
    clean_allowed_ips,
    webhook_allowed_ips_set,
    webhook_receive,
    webhook_secret_rotate,
)
from strategies.services.sweeps import RANK_METRICS

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


# --- backtests and sweeps ----------------------------------------------------------------------------------
BACKTEST_POLL_SECONDS = 2
# The report's metrics as the pages show them: (key, label, kind) with kind money, pct, ratio or count.
REPORT_METRICS = (
    ("net_pnl", "Net P&L", "money"),
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("max_drawdown", "Max drawdown", "money"),
    ("max_drawdown_pct", "Max drawdown %", "pct"),
    ("max_drawdown_days", "Longest drawdown (days)", "count"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("trades", "Trades", "count"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("expectancy", "Expectancy", "money"),
    ("average_win", "Average win", "money"),
    ("average_loss", "Average loss", "money"),
    ("longest_win_streak", "Longest winning run", "count"),
    ("longest_loss_streak", "Longest losing run", "count"),
    ("exposure", "Exposure", "pct"),
    ("charges", "Charges", "money"),
    ("initial_capital", "Capital", "money"),
    ("final_equity", "Final equity", "money"),
)


def _id_param(value: object, *, field: str) -> int:
    """A record id from a form or query value; raises BacktestInvalid (422) naming ``field`` otherwise."""
    number = int_or_none(value)
    if number is None or not 0 < number <= selectors.MAX_ID:
        raise BacktestInvalid(f"Choose {field} (a record's id).", extra={"field": field})
    return number


# Metrics coloured by their sign (a profit green, a loss red); a drawdown or charges are amounts, not gains.
SIGNED_METRICS = frozenset({"net_pnl", "total_return", "cagr", "expectancy", "average_win", "average_loss"})


def _metric_rows(*results: dict) -> list[dict]:
    return [
        {
            "key": key,
            "label": label,
            "kind": kind,
            "signed": key in SIGNED_METRICS,
            "values": [result.get(key) for result in results],
        }
        for key, label, kind in REPORT_METRICS
    ]


def _backtest_form_error(form, exc: ApplicationError) -> None:
    # A grid combination the schema refused belongs to the grid, whichever parameter it names.
    field = "grid" if "combination" in exc.extra else backtest_form_field(exc.extra.get("field"))
    form.add_error(field if field in form.fields else None, exc.message)


def _instrument_labels(run: BacktestRun) -> str:
    rows = Instrument.objects.filter(pk__in=run.instruments).values_list("exchange", "tradingsymbol")
    return ", ".join(f"{exchange}:{symbol}" for exchange, symbol in rows) or "—"


@verified_required
@require_http_methods(["GET", "POST"])
def backtest_new(request: HttpRequest, slug: str, definition_id: int) -> HttpResponse:
    """Run a backtest of a definition with its parameters; a queued run's page comes back (its progress
    polled, then its report). Refusals show beside the field they name (422; 403 for a Viewer)."""
    try:
        organisation, membership = _org(request, slug)
        definition = _definition(organisation, definition_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    form = BacktestForm(request.POST if request.method == "POST" else None, initial=_backtest_initial(definition))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                run = sweeps.backtest_queue(
                    actor=request.user,
                    definition=definition,
                    instruments=[form.cleaned_data["instrument"]],
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                    settings=form.settings(),
                )
            except ApplicationError as exc:
                _backtest_form_error(form, exc)
                status = exc.status
            else:
                return redirect("strategies:backtest", organisation.slug, run.pk)
        else:
            status = 400
    context = _base(
        organisation,
        membership,
        definition=definition,
        form=form,
        recent=selectors.backtest_list(organisation_id=organisation.pk).filter(definition=definition)[:10],
    )
    return render(request, "strategies/backtest_new.html", context, status=status)


def _backtest_initial(definition: StrategyDefinition) -> dict:
    instrument = definition.params.get("instrument") if isinstance(definition.params, dict) else None
    if isinstance(instrument, dict) and instrument.get("exchange") and instrument.get("symbol"):
        return {"instrument": f"{instrument['exchange']}:{instrument['symbol']}"}
    return {}


@verified_required
@require_GET
def backtests(request: HttpRequest, slug: str) -> HttpResponse:
    """The organisation's backtests and sweeps, newest first, with a form to compare two runs."""
    try:
        organisation, membership = _org(request, slug)
    except ApplicationError as exc:
        return _refused(request, exc)
    runs = selectors.backtest_list(organisation_id=organisation.pk).defer("equity", "trades")[:200]
    context = _base(
        organisation,
        membership,
        runs=runs,
        sweeps=selectors.sweep_list(organisation_id=organisation.pk)[:50],
        definitions=StrategyDefinition.objects.filter(organisation=organisation).order_by("name"),
    )
    return render(request, "strategies/backtests.html", context)


def _backtest_context(request: HttpRequest, organisation, membership, run: BacktestRun, **extra) -> dict:
    finished = run.status in (BacktestRun.Status.DONE, BacktestRun.Status.FAILED)
    paper_accounts = (
        [a for a in account_list_for_user(user=request.user, access="trade") if a.broker == "paper"]
        if membership.role in WRITERS and finished
        else []
    )
    return _base(
        organisation,
        membership,
        run=run,
        finished=finished,
        instruments=_instrument_labels(run),
        metrics=_metric_rows(run.result) if run.result else [],
        monthly=[
            (year, list(zip(selectors.MONTHS, values, strict=True)))
            for year, values in selectors.monthly_returns(run=run)
        ],
        months=selectors.MONTHS,
        equity=[{"time": point[0], "equity": point[1], "drawdown": point[2]} for point in run.equity],
        paper_accounts=paper_accounts,
        poll_seconds=BACKTEST_POLL_SECONDS,
        **extra,
    )


@verified_required
@require_GET
def backtest(request: HttpRequest, slug: str, backtest_id: int) -> HttpResponse:
    """A backtest: its progress while queued or running (polled), then its report."""
    try:
        organisation, membership = _org(request, slug)
        run = selectors.backtest_get(organisation_id=organisation.pk, run_id=backtest_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    return render(request, "strategies/backtest.html", _backtest_context(request, organisation, membership, run))


@verified_required
@require_GET
def backtest_progress(request: HttpRequest, slug: str, backtest_id: int) -> HttpResponse:
    """The progress fragment, polled by HTMX; once the run has finished HTMX reloads the page (its report)."""
    try:
        organisation, membership = _org(request, slug)
        run = selectors.backtest_get(organisation_id=organisation.pk, run_id=backtest_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    context = _backtest_context(request, organisation, membership, run)
    response = render(request, "strategies/backtest.html#progress", context)
    if context["finished"] and request.htmx:
        response["HX-Refresh"] = "true"
    return response


@verified_required
@require_GET
def backtest_trades_csv(request: HttpRequest, slug: str, backtest_id: int) -> HttpResponse:
    try:
        organisation, _ = _org(request, slug)
        run = selectors.backtest_get(organisation_id=organisation.pk, run_id=backtest_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    response = HttpResponse(selectors.backtest_csv(run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-trades.csv"'
    return response


@verified_required
@require_GET
def backtest_compare(request: HttpRequest, slug: str) -> HttpResponse:
    """Two runs side by side (``?a=<id>&b=<id>``): their settings, metrics and equity curves."""
    try:
        organisation, membership = _org(request, slug)
        ids = [_id_param(request.GET.get(name), field=name) for name in ("a", "b")]
        pair = [selectors.backtest_get(organisation_id=organisation.pk, run_id=i) for i in ids]
    except ApplicationError as exc:
        return _refused(request, exc)
    context = _base(
        organisation,
        membership,
        pair=[{"run": run, "instruments": _instrument_labels(run)} for run in pair],
        metrics=_metric_rows(pair[0].result, pair[1].result),
        curves=[[{"time": p[0], "equity": p[1]} for p in run.equity] for run in pair],
    )
    return render(request, "strategies/backtest_compare.html", context)


@verified_required
@require_POST
def backtest_deploy(request: HttpRequest, slug: str, backtest_id: int) -> HttpResponse:
    """Deploy the run's strategy with the run's parameters on a paper account (one the user may trade):
    the definition itself when its parameters are the run's, otherwise a copy of it carrying them
    (``strategy_create``), then ``deployment_create`` in paper mode. The deployment's page follows."""
    try:
        organisation, _ = _org(request, slug)
        run = selectors.backtest_get(organisation_id=organisation.pk, run_id=backtest_id)
        require_role(
            user=request.user,
            organisation_id=organisation.pk,
            roles=WRITERS,
            error=StrategyForbidden,
            what="deploy strategies",
        )
        account_id = _id_param(request.POST.get("account"), field="account")
        definition = _definition_with_params(request, run)
        deployment = deployments.deployment_create(
            actor=request.user,
            definition=definition,
            name=f"{definition.name} · paper"[:100],
            mode=Deployment.Mode.PAPER,
            accounts=[(account_id, 1)],
        )
    except ApplicationError as exc:
        return _refused(request, exc)
    messages.success(request, f"Deployed on paper with the parameters of backtest {run.pk}. Start it when ready.")
    return redirect("strategies:deployment", organisation.slug, deployment.pk)


def _definition_with_params(request: HttpRequest, run: BacktestRun) -> StrategyDefinition:
    definition = run.definition
    if definition is None:
        raise StrategyNotFound("The backtest's strategy was deleted.", extra={"backtest_id": run.pk})
    if definition.params == run.params:
        return definition
    name = f"{definition.name} · backtest {run.pk}"[:100]
    same = StrategyDefinition.objects.filter(organisation_id=run.organisation_id, name=name).first()
    if same is not None and same.params == run.params and same.kind == run.kind:
        return same
    return definitions.strategy_create(
        actor=request.user,
        organisation=definition.organisation,
        name=name,
        kind=run.kind,
        params=run.params,
        description=f"The parameters of backtest {run.pk} of {definition.name}.",
    )


@verified_required
@require_http_methods(["GET", "POST"])
def sweep_new(request: HttpRequest, slug: str, definition_id: int) -> HttpResponse:
    """A parameter sweep of a definition: the grid as JSON and the backtest's settings; the sweep's page
    follows. An oversize grid is refused with its size (422) before anything runs."""
    try:
        organisation, membership = _org(request, slug)
        definition = _definition(organisation, definition_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    form = SweepForm(
        request.POST if request.method == "POST" else None,
        initial=_backtest_initial(definition),
        metrics=list(RANK_METRICS),
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                sweep = sweeps.sweep_create(
                    actor=request.user,
                    definition=definition,
                    grid=form.cleaned_data["grid"],
                    metric=form.cleaned_data["metric"],
                    instruments=[form.cleaned_data["instrument"]],
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                    settings=form.settings(),
                )
            except ApplicationError as exc:
                _backtest_form_error(form, exc)
                status = exc.status
            else:
                return redirect("strategies:sweep", organisation.slug, sweep.pk)
        else:
            status = 400
    context = _base(
        organisation, membership, definition=definition, form=form, max_runs=settings.STRATEGIES_SWEEP_MAX_RUNS
    )
    return render(request, "strategies/sweep_new.html", context, status=status)


def _sweep_context(organisation, membership, sweep) -> dict:
    progress = selectors.sweep_progress(sweep_id=sweep.pk)
    ranking = selectors.sweep_ranking(sweep=sweep)
    keys = list(sweep.grid) if isinstance(sweep.grid, dict) else []
    return _base(
        organisation,
        membership,
        sweep=sweep,
        progress=progress,
        finished=progress.finished == progress.total,
        ranking=[{"row": row, "values": [(key, _param_at(row.run.params, key)) for key in keys]} for row in ranking],
        keys=keys,
        poll_seconds=BACKTEST_POLL_SECONDS,
    )


def _param_at(params: dict, path: str):
    value: object = params
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@verified_required
@require_GET
def sweep(request: HttpRequest, slug: str, sweep_id: int) -> HttpResponse:
    """A sweep: its grid, progress (polled while runs are unfinished) and the runs ranked by its metric."""
    try:
        organisation, membership = _org(request, slug)
        found = selectors.sweep_get(organisation_id=organisation.pk, sweep_id=sweep_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    context = _sweep_context(organisation, membership, found)
    if request.htmx and request.GET.get("part") == "results":
        return render(request, "strategies/sweep.html#results", context)
    return render(request, "strategies/sweep.html", context)
