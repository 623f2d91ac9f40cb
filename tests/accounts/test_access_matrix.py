"""Every page and API route x every kind of caller x own or other organisation x granted or not.

ROUTES classifies each route; the test collects the routes from the URL resolver and the ninja
API, so a new route without an entry fails ``test_every_route_is_classified``. Adding a route is
one line: its URL name (or "METHOD /api/path") and its rule, prefixed with POST for form posts; an
API write whose schema refuses an empty body also needs a harmless one in JSON_BODIES.

Rules (who is allowed; everyone else is denied):
  exempt          anyone, even a session that has only passed the password (health, metrics, logout)
  public          anyone except a password-only session (which is sent to the OTP page first)
  otp             a signed-in session, verified or not (the second-factor pages themselves)
  verified        any user who passed both factors, in any organisation or none
  staff           Django staff only (none of the callers below)
  none            nobody: the route only names a prefix and answers 404
  org_manager     Owner or Admin of the organisation in the URL
  org_reports     Owner, Admin or Compliance member of the organisation in the URL (its compliance reports)
  report_reader   an Owner, Admin or Compliance member of some organisation (the reports' landing page)
  org_member      any member of the organisation in the URL (Owner, Admin, Trader, Viewer, Compliance)
  org_writer      Owner, Admin or Trader of the organisation in the URL (a Trader granted trading on the
                  deployment's account, for a deployment's acts)
  account:view    Owner/Admin of the account's organisation, or a Trader/Viewer granted the account
  account:trade   Owner/Admin of the account's organisation, or a Trader granted trading on it
  account:manage  Owner/Admin of the account's organisation
  key_owner       the owner of the API key in the URL
  watchlist_owner the owner of the watchlist in the URL
  alert_owner     the owner of the price alert in the URL

Allowed means any answer but 401, 403, 404 or a redirect to a sign-in or OTP page (form posts with empty
input answer 400/422 or redirect back, which counts as allowed: the gate let them through).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from guardian.shortcuts import assign_perm

from accounts.credentials import api_key_create
from accounts.models import Organisation, Role
from alerts.models import Alert, TelegramBot
from brokers.models import BrokerAccount
from compliance.models import ExportJob
from config.api import api
from core import sealing
from marketdata.models import Instrument
from orders.models import Order
from strategies.models import AlgoId, BacktestRun, BacktestSweep, Deployment, DeploymentAccount, StrategyDefinition
from terminal.services.watchlists import watchlist_ensure_default

from .conftest import make_user, password_only_client, verified_client

ROUTES: dict[str, str] = {
    # --- pages -------------------------------------------------------------------------------------
    "home": "verified",
    "login": "public",
    "logout": "POST exempt",
    "prometheus-django-metrics": "exempt",
    "accounts:otp-verify": "otp",
    "accounts:otp-enrol": "otp",
    "accounts:backup-codes": "POST verified",
    "accounts:profile": "verified",
    "accounts:api-key-create": "POST verified",
    "accounts:api-key-revoke": "POST key_owner",
    "accounts:members": "org_manager",
    "accounts:member-role": "POST org_manager",
    "accounts:member-remove": "POST org_manager",
    "accounts:account-grant": "POST account:manage",
    "accounts:account-revoke": "POST account:manage",
    "broker-connect": "POST account:trade",
    # The broker's redirect: the account and the user who started the sign-in are in its signed state.
    "broker-callback": "verified",
    "kite-postback": "POST public",  # Kite's server calls it (no cookies); each body is checked by its checksum
    "brokers:accounts": "org_manager",
    "brokers:account-add": "POST org_manager",
    "brokers:account-credentials": "org_manager",  # GET the form; POST replaces (tests/brokers)
    "rms:limits": "org_manager",
    "rms:limits-organisation": "POST org_manager",
    "rms:limits-account": "POST org_manager",
    "rms:limits-member": "POST org_manager",
    "compliance:home": "report_reader",
    "compliance:reports": "org_reports",
    "compliance:trade-trail": "org_reports",
    "compliance:trade-trail-export": "org_reports",
    "compliance:order-to-trade": "org_reports",
    "compliance:order-to-trade-export": "org_reports",
    "compliance:audit-log": "org_reports",
    "compliance:audit-log-export": "org_reports",
    # Starts a verification of the trail (it records its outcome, and changes nothing else).
    "compliance:audit-verify": "POST org_reports",
    "compliance:algo-summary": "org_reports",
    "compliance:algo-summary-export": "org_reports",
    "compliance:login-history": "org_reports",
    "compliance:login-history-export": "org_reports",
    "compliance:kill-switch-events": "org_reports",
    "compliance:kill-switch-events-export": "org_reports",
    "compliance:rms-rejections": "org_reports",
    "compliance:rms-rejections-export": "org_reports",
    # Export jobs and their files: anyone who may read the reports may export them.
    "compliance:exports": "org_reports",
    "compliance:export-job": "org_reports",
    "compliance:export-download": "org_reports",
    # The platform's versions: staff holding compliance.view_reports (tests/compliance/test_platform_reports.py).
    "compliance:platform-reports": "staff",
    "compliance:platform-trade-trail": "staff",
    "compliance:platform-trade-trail-export": "staff",
    "compliance:platform-order-to-trade": "staff",
    "compliance:platform-order-to-trade-export": "staff",
    "compliance:platform-audit-log": "staff",
    "compliance:platform-audit-log-export": "staff",
    "compliance:platform-audit-verify": "POST staff",
    "compliance:platform-algo-summary": "staff",
    "compliance:platform-algo-summary-export": "staff",
    "compliance:platform-login-history": "staff",
    "compliance:platform-login-history-export": "staff",
    "compliance:platform-kill-switch-events": "staff",
    "compliance:platform-kill-switch-events-export": "staff",
    "compliance:platform-rms-rejections": "staff",
    "compliance:platform-rms-rejections-export": "staff",
    # A charting tool calls it (no cookies); the deployment's secret is the check (tests/strategies).
    "strategies:webhook": "POST public",
    "strategies:home": "org_member",  # to the user's organisation's list; none without one
    "strategies:list": "org_member",
    "strategies:rule-builder": "org_member",
    "strategies:webhook-strategy-new": "POST org_writer",  # Viewers see the form; saving is a Writer's (403)
    "strategies:deploy": "org_member",
    "strategies:deployment": "org_member",
    "strategies:deployment-live": "org_member",
    "strategies:deployment-webhook-secret": "POST org_writer",
    "strategies:deployment-start": "POST org_writer",
    "strategies:deployment-pause": "POST org_writer",
    "strategies:deployment-resume": "POST org_writer",
    "strategies:deployment-stop": "POST org_writer",
    "strategies:deployment-emergency-stop": "POST org_writer",
    "strategies:algo-ids": "org_manager",
    "strategies:backtests": "org_member",
    "strategies:backtest-new": "org_member",  # Viewers see the page; running is a Writer's (403)
    "strategies:sweep-new": "org_member",
    "strategies:backtest": "org_member",
    "strategies:backtest-progress": "org_member",
    "strategies:backtest-trades-csv": "org_member",
    "strategies:backtest-compare": "org_member",  # without ?a=&b= a member gets 422
    "strategies:backtest-deploy": "POST org_writer",
    "strategies:sweep": "org_member",
    "strategies:algo-id-add": "POST org_manager",
    "strategies:algo-id-deactivate": "POST org_manager",
    "admin:*": "staff",
    "admin:login": "public",
    "<admin/login/>": "public",  # answers before admin:login, sending the admin to the site's sign-in
    "admin:logout": "POST public",
    "watchlist-panel": "watchlist_owner",
    "watchlist-search": "watchlist_owner",
    "watchlist-add": "POST watchlist_owner",
    "watchlist-remove": "POST watchlist_owner",
    "watchlist-new": "POST verified",  # a list of one's own
    "watchlist-rename": "POST watchlist_owner",
    "watchlist-delete": "POST watchlist_owner",
    "watchlist-move": "POST watchlist_owner",
    "watchlist-move-row": "POST watchlist_owner",
    "option-strategy": "POST verified",  # its legs' account is checked as the ticket's (tests/terminal)
    "alerts:page": "verified",
    "alerts:panel": "verified",
    "alerts:new": "verified",
    "alerts:edit": "alert_owner",
    "alerts:delete": "POST alert_owner",
    "alerts:telegram": "org_manager",
    "option-chain": "verified",
    "chart-indicators": "verified",  # the symbol master's bars, the same for every signed-in user
    "reports": "verified",  # sends the caller to the reports of an account they may view
    "reports-pnl": "account:view",
    "reports-pnl-export": "account:view",
    "reports-tradebook": "account:view",
    "reports-tradebook-export": "account:view",
    "reports-tax": "account:view",
    "reports-tax-export": "account:view",
    "holdings-home": "verified",
    "holdings": "account:view",
    "holdings-panel": "account:view",
    "trading-panel": "account:view",
    "order-ticket": "account:trade",
    "order-place": "POST account:trade",
    "orders-cancel-all": "POST account:trade",
    "position-square-off": "POST account:trade",
    "kill-switch": "POST account:trade",
    "gtt-panel": "account:view",
    "gtt-place": "POST account:trade",
    "gtt-delete": "POST account:trade",
    "order-cancel": "POST account:trade",
    "order-modify": "POST account:trade",
    "order-preview": "account:trade",  # without fields a trader gets 422
    "market-depth": "verified",
    "baskets": "account:trade",
    "basket-edit": "POST account:trade",
    "basket-preview": "account:trade",  # without legs a trader gets 422
    "basket-place": "POST account:trade",  # without a basket a trader gets 422
    "basket-delete": "POST account:trade",
    "api:api-root": "none",
    "api:openapi-json": "exempt",
    "api:openapi-view": "exempt",
    # --- API -----------------------------------------------------------------------------------------
    "GET /api/health": "exempt",
    "GET /api/health/ready": "exempt",
    "POST /api/accounts/auth/token": "exempt",
    "POST /api/accounts/auth/refresh": "exempt",
    "POST /api/accounts/auth/revoke": "exempt",
    "GET /api/accounts/me": "verified",
    "GET /api/accounts/api-keys": "verified",
    "GET /api/accounts/broker-accounts": "verified",
    "GET /api/accounts/broker-accounts/{account_id}": "account:view",
    "GET /api/v1/whoami": "verified",
    # Order writes name their account in the body: the gate on the path is sign-in; the account is
    # checked by account_get_for_user inside (tests/orders/test_orders_api.py covers those denials).
    "POST /api/v1/orders": "verified",
    "POST /api/v1/orders/sliced": "verified",
    "POST /api/v1/orders/basket": "verified",
    "POST /api/v1/positions/close": "verified",
    "POST /api/v1/kill-switch": "verified",
    "POST /api/v1/kill-switch/release": "verified",
    "GET /api/v1/orders/{order_id}": "account:view",
    "PUT /api/v1/orders/{order_id}": "verified",  # needs a body: without one the schema answers 422 first
    "DELETE /api/v1/orders/{order_id}": "account:trade",
    "POST /api/v1/accounts/{account_id}/orders/cancel-all": "account:trade",
    "GET /api/v1/accounts/{account_id}/orders": "account:view",
    "GET /api/v1/accounts/{account_id}/trades": "account:view",
    "GET /api/v1/accounts/{account_id}/positions": "account:view",
    "GET /api/v1/accounts/{account_id}/holdings": "account:view",
    "GET /api/v1/accounts/{account_id}/pnl": "account:view",
    "GET /api/v1/accounts/{account_id}/tradebook": "account:view",
    "GET /api/v1/accounts/{account_id}/tax-pnl": "account:view",
    "GET /api/v1/accounts/{account_id}/funds": "account:view",
    "GET /api/v1/orgs/{slug}/limits": "org_manager",
    "GET /api/v1/alerts": "verified",
    "POST /api/v1/alerts": "verified",  # an empty alert: 422 past the gate
    "GET /api/v1/alerts/{alert_id}": "alert_owner",
    "PUT /api/v1/alerts/{alert_id}": "alert_owner",
    "DELETE /api/v1/alerts/{alert_id}": "alert_owner",
    "GET /api/v1/alerts/{alert_id}/firings": "alert_owner",
    "GET /api/v1/orgs/{slug}/telegram": "org_manager",
    "PUT /api/v1/orgs/{slug}/telegram": "org_manager",
    "DELETE /api/v1/orgs/{slug}/telegram": "org_manager",
    "PUT /api/v1/orgs/{slug}/limits/organisation": "org_manager",
    "PUT /api/v1/orgs/{slug}/limits/accounts/{account_id}": "org_manager",
    "PUT /api/v1/orgs/{slug}/limits/members/{user_id}": "org_manager",
    "GET /api/v1/orgs/{slug}/strategies": "org_member",
    "POST /api/v1/orgs/{slug}/strategies": "org_writer",
    "GET /api/v1/orgs/{slug}/strategies/{definition_id}": "org_member",
    "PATCH /api/v1/orgs/{slug}/strategies/{definition_id}": "org_writer",
    "DELETE /api/v1/orgs/{slug}/strategies/{definition_id}": "org_writer",
    "GET /api/v1/orgs/{slug}/deployments": "org_member",
    "POST /api/v1/orgs/{slug}/deployments": "org_writer",
    "GET /api/v1/orgs/{slug}/deployments/{deployment_id}": "org_member",
    "POST /api/v1/orgs/{slug}/deployments/{deployment_id}/start": "org_writer",
    "POST /api/v1/orgs/{slug}/deployments/{deployment_id}/pause": "org_writer",
    "POST /api/v1/orgs/{slug}/deployments/{deployment_id}/resume": "org_writer",
    "POST /api/v1/orgs/{slug}/deployments/{deployment_id}/stop": "org_writer",
    "POST /api/v1/orgs/{slug}/deployments/{deployment_id}/emergency-stop": "org_writer",
    "POST /api/v1/orgs/{slug}/deployments/{deployment_id}/webhook-secret": "org_writer",
    "GET /api/v1/orgs/{slug}/deployments/{deployment_id}/positions": "org_member",
    "GET /api/v1/orgs/{slug}/deployments/{deployment_id}/pnl": "org_member",
    "GET /api/v1/orgs/{slug}/deployments/{deployment_id}/orders": "org_member",
    "GET /api/v1/orgs/{slug}/deployments/{deployment_id}/log": "org_member",
    "GET /api/v1/orgs/{slug}/algo-ids": "org_member",
    "POST /api/v1/orgs/{slug}/algo-ids": "org_manager",
    "POST /api/v1/orgs/{slug}/algo-ids/{algo_id}/deactivate": "org_manager",
    "GET /api/v1/orgs/{slug}/backtests": "org_member",
    "POST /api/v1/orgs/{slug}/backtests": "org_writer",
    "GET /api/v1/orgs/{slug}/backtests/compare": "org_member",  # without ?a=&b= a member gets 422
    "GET /api/v1/orgs/{slug}/backtests/{backtest_id}": "org_member",
    "GET /api/v1/orgs/{slug}/backtests/{backtest_id}/trades.csv": "org_member",
    "GET /api/v1/orgs/{slug}/sweeps": "org_member",
    "POST /api/v1/orgs/{slug}/sweeps": "org_writer",
    "GET /api/v1/orgs/{slug}/sweeps/{sweep_id}": "org_member",
    "GET /api/marketdata/instruments": "verified",
    "GET /api/marketdata/instruments/{instrument_id}": "verified",
    "GET /api/marketdata/quotes": "verified",
    "GET /api/marketdata/candles/{instrument_id}": "verified",
}

ACTORS = ("owner", "admin", "trader", "viewer", "compliance", "outsider", "anonymous", "password_only")
MEMBER_ROLES = {
    "owner": Role.OWNER,
    "admin": Role.ADMIN,
    "trader": Role.TRADER,
    "viewer": Role.VIEWER,
    "compliance": Role.COMPLIANCE,
}
# Values for URL parameters that do not depend on the target (the admin's).
FIXED_KWARGS = {
    "app_label": "accounts",
    "object_id": "1",
    "id": "1",
    "pk": "1",
    "content_type_id": "1",
    "name": "orders",
    "trigger_id": "1",
    "broker": "kite",
}
# JSON bodies for API writes that would otherwise be refused by their schema (422) before the gate:
# an empty object passes the schema and changes nothing.
JSON_BODIES = {
    "PUT /api/v1/orgs/{slug}/limits/organisation": "{}",
    "PUT /api/v1/orgs/{slug}/limits/accounts/{account_id}": "{}",
    "PUT /api/v1/orgs/{slug}/limits/members/{user_id}": "{}",
    # Refused past the gate (an empty name, an unknown strategy: 422), so they write nothing.
    "POST /api/v1/orgs/{slug}/strategies": '{"name": "", "kind": "webhook"}',
    "PATCH /api/v1/orgs/{slug}/strategies/{definition_id}": "{}",
    "POST /api/v1/orgs/{slug}/deployments": (
        '{"definition_id": 1, "name": "", "mode": "paper", "accounts": [{"account_id": 1}]}'
    ),
    "POST /api/v1/orgs/{slug}/algo-ids": '{"code": ""}',
    "PUT /api/v1/alerts/{alert_id}": "{}",
    # A token of the wrong shape is refused before anything asks Telegram.
    "PUT /api/v1/orgs/{slug}/telegram": '{"token": "not-a-token"}',
    "POST /api/v1/orgs/{slug}/backtests": '{"definition_id": 1, "instruments": "?", "start": "?", "end": "?"}',
    "POST /api/v1/orgs/{slug}/sweeps": '{"definition_id": 1, "instruments": "?", "start": "?", "end": "?", "grid": {}}',
}
SIGN_IN_PAGES = ("/login/", "/admin/login/")
OTP_PAGES = ("/account/otp/",)


@dataclass(frozen=True)
class Route:
    key: str  # the ROUTES key it was classified under
    name: str  # its own URL name, or "METHOD /api/path"
    method: str
    path_template: str  # Django route or ninja path, for parameters
    reversible: bool = True


# --- collecting routes ----------------------------------------------------------------------------------
def _ninja_routes() -> list[tuple[str, str]]:
    """Return ("METHOD /api/path", path) for every operation of the API."""
    routes = []
    for bound in api._get_bound_routers():
        for path, path_view in bound.template.path_operations.items():
            full = re.sub(r"/+", "/", f"/api/{bound.prefix}/{path}")
            for operation in path_view.operations:
                routes.extend((f"{method} {full}", full) for method in operation.methods)
    return routes


def _django_route_to_ninja(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).strip("/")


def _resolver_routes(patterns=None, namespace: str = "", prefix: str = "") -> list[tuple[str, str, bool]]:
    """Return (qualified name, route, named) for every URL pattern, walking includes."""
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}".strip(":") if entry.namespace else namespace
            found.extend(_resolver_routes(entry.url_patterns, inner, route))
        elif isinstance(entry, URLPattern):
            qualified = f"{namespace}:{entry.name}".strip(":") if entry.name else f"{namespace}:<{route}>".strip(":")
            found.append((qualified, route, bool(entry.name)))
    return found


def _classify(name: str) -> str | None:
    if name in ROUTES:
        return name
    namespace = name.split(":")[0] + ":*" if ":" in name else None
    return namespace if namespace in ROUTES else None


def collect_routes() -> tuple[list[Route], list[str]]:
    """Return the classified routes and the names of routes with no entry in ROUTES."""
    ninja = _ninja_routes()
    ninja_paths = {path for _, path in ninja}
    routes, unclassified = [], []
    for name, route, named in _resolver_routes():
        if name.startswith("api:") and _django_route_to_ninja(route) in ninja_paths:
            continue  # an API operation: classified by method and path below
        key = _classify(name)
        if key is None:
            unclassified.append(f"{name}  ({route})")
            continue
        method = ROUTES[key].split()[0] if len(ROUTES[key].split()) == 2 else "GET"
        routes.append(Route(key, name, method, route, reversible=named))
    for name, path in ninja:
        if name not in ROUTES:
            unclassified.append(name)
            continue
        routes.append(Route(name, name, name.split()[0], path))
    return routes, unclassified


def test_every_route_is_classified():
    _, unclassified = collect_routes()
    assert not unclassified, "Add these routes to ROUTES in tests/accounts/test_access_matrix.py:\n" + "\n".join(
        unclassified
    )


def test_every_classified_route_exists():
    routes, _ = collect_routes()
    used = {route.key for route in routes}
    assert set(ROUTES) - used == set(), "Stale ROUTES entries"


# --- the world ----------------------------------------------------------------------------------------
@pytest.fixture
def world(db):
    own = Organisation.objects.create(name="Own", slug="own")
    other = Organisation.objects.create(name="Other", slug="other")
    users = {actor: make_user(f"own-{actor}", organisation=own, role=role) for actor, role in MEMBER_ROLES.items()}
    users["outsider"] = make_user("outsider")
    users["password_only"] = make_user("own-pwonly", organisation=own, role=Role.TRADER)
    theirs = {actor: make_user(f"other-{actor}", organisation=other, role=role) for actor, role in MEMBER_ROLES.items()}
    accounts = {}
    for org in (own, other):
        granted = BrokerAccount.objects.create(
            organisation=org, label="Granted", broker="paper", client_code=f"{org}-G"
        )
        ungranted = BrokerAccount.objects.create(organisation=org, label="Not", broker="paper", client_code=f"{org}-U")
        accounts[(org.slug, True)], accounts[(org.slug, False)] = granted, ungranted
        # Grants to our trader and viewer even on the other organisation's account: they must not count there.
        for grantee in (users["trader"], users["password_only"], theirs["trader"]):
            assign_perm("brokers.trade_brokeraccount", grantee, granted)
            assign_perm("brokers.view_brokeraccount", grantee, granted)
        for grantee in (users["viewer"], theirs["viewer"]):
            assign_perm("brokers.view_brokeraccount", grantee, granted)
    keys = {
        "own": api_key_create(user=users["trader"], name="bot", scope="read", allowed_ips=[])[0],
        "other": api_key_create(user=theirs["trader"], name="bot", scope="read", allowed_ips=[])[0],
    }
    members = {"own": users["viewer"], "other": theirs["viewer"]}
    instrument = Instrument.objects.create(
        exchange="NSE", segment="NSE", tradingsymbol="MATRIX", exchange_token="9", instrument_type="EQ"
    )
    orders = {
        key: Order.objects.create(
            account=account,
            instrument=instrument,
            side="BUY",
            quantity=1,
            order_type="LIMIT",
            product="CNC",
            price=100,
            margin_price=100,
            source="api",
        )
        for key, account in accounts.items()
    }
    strategies = {}
    for org in (own, other):
        definition = StrategyDefinition.objects.create(organisation=org, name="Signals", kind="webhook")
        deployment = Deployment.objects.create(
            organisation=org, definition=definition, name="Signals", kind="webhook", mode="paper"
        )
        DeploymentAccount.objects.create(deployment=deployment, account=accounts[(org.slug, True)])
        algo = AlgoId.objects.create(organisation=org, code=f"ALGO-{org.slug}")
        sweep = BacktestSweep.objects.create(organisation=org, definition=definition, grid={"x": [1]})
        backtest = BacktestRun.objects.create(
            organisation=org, definition=definition, sweep=sweep, kind="webhook", start_date=date(2026, 3, 2),
            end_date=date(2026, 3, 2), status="done", result={"net_pnl": "1.00"},
        )  # fmt: skip
        strategies[org.slug] = {
            "definition": definition, "deployment": deployment, "algo": algo, "backtest": backtest, "sweep": sweep,
        }  # fmt: skip
    export_jobs = {
        org.slug: ExportJob.objects.create(
            organisation=org, report="trade_trail", title="Trade trail", format="csv", rows_ref="-", filters_ref="-"
        )
        for org in (own, other)
    }
    watchlists = {
        "own": watchlist_ensure_default(user=users["trader"]),
        "other": watchlist_ensure_default(user=theirs["trader"]),
    }
    alerts = {
        key: Alert.objects.create(
            user=trader, organisation=org, instrument=instrument, condition="ltp_above", level=Decimal("100")
        )
        for key, trader, org in (("own", users["trader"], own), ("other", theirs["trader"], other))
    }
    for org in (own, other):  # each organisation's bot, so reading it is allowed, not "none set" (404)
        TelegramBot.objects.create(
            organisation=org,
            bot_username="matrix_bot",
            token_sealed=sealing.encrypt(b"123456:" + b"x" * 35, associated_data=TelegramBot.binding(org.pk)),
        )
    return {
        "alerts": alerts,
        "orgs": {"own": own, "other": other},
        "users": users,
        "accounts": accounts,
        "keys": keys,
        "members": members,
        "watchlists": watchlists,
        "orders": orders,
        "instrument": instrument,
        "strategies": strategies,
        "export_jobs": export_jobs,
    }


def _client(world, actor: str) -> Client:
    if actor == "anonymous":
        return Client()
    if actor == "password_only":
        return password_only_client(world["users"][actor])
    return verified_client(world["users"][actor])


def _expected(rule: str, actor: str, org: str, granted: bool) -> bool:
    own = org == "own"
    if rule == "exempt":
        return True
    if rule == "public":
        return actor != "password_only"
    if rule == "otp":
        return actor != "anonymous"
    if rule == "verified":
        return actor not in ("anonymous", "password_only")
    if rule in ("staff", "none"):
        return False
    if rule == "org_member":
        return own and actor in ("owner", "admin", "trader", "viewer", "compliance")
    if rule == "org_reports":
        return own and actor in ("owner", "admin", "compliance")
    if rule == "report_reader":
        return actor in ("owner", "admin", "compliance")
    if rule == "org_writer":
        return own and actor in ("owner", "admin", "trader")
    if rule == "org_manager" or rule == "account:manage":
        return own and actor in ("owner", "admin")
    if rule == "account:view":
        return own and (actor in ("owner", "admin") or (actor in ("trader", "viewer") and granted))
    if rule == "account:trade":
        return own and (actor in ("owner", "admin") or (actor == "trader" and granted))
    if rule in ("key_owner", "watchlist_owner", "alert_owner"):
        return own and actor == "trader"
    raise AssertionError(f"unknown rule {rule!r}")


def _allowed(response, rule: str) -> bool:
    if response.status_code in (401, 403, 404):
        return False
    if response.status_code in (301, 302):
        # A gate sends the caller to sign in and come back (?next=); signing out also lands on /login/.
        location = response["Location"]
        if location.startswith(SIGN_IN_PAGES) and "next=" in location:
            return False
        if location.startswith(OTP_PAGES) and rule != "otp":
            return False
    return True


def _targets(route: Route):
    """Yield (org, granted) pairs that change the URL; routes without such parameters get one."""
    params = set(re.findall(r"[<{](?:\w+:)?(\w+)[>}]", route.path_template))
    if params & {"account_id", "order_id"}:
        yield from [("own", True), ("own", False), ("other", True), ("other", False)]
    elif params & {"slug", "key_id", "user_id", "watchlist_id", "alert_id", "token"}:
        yield from [("own", True), ("other", True)]
    else:
        yield ("own", True)


def _url(world, route: Route, org: str, granted: bool) -> str:
    values = dict(FIXED_KWARGS)
    values.update(
        slug=world["orgs"][org].slug,
        account_id=world["accounts"][(world["orgs"][org].slug, granted)].pk,
        key_id=world["keys"][org].pk,
        user_id=world["members"][org].pk,
        watchlist_id=world["watchlists"][org].pk,
        alert_id=world["alerts"][org].pk,
        order_id=world["orders"][(world["orgs"][org].slug, granted)].pk,
        instrument_id=world["instrument"].pk,
        definition_id=world["strategies"][world["orgs"][org].slug]["definition"].pk,
        deployment_id=world["strategies"][world["orgs"][org].slug]["deployment"].pk,
        algo_id=world["strategies"][world["orgs"][org].slug]["algo"].pk,
        backtest_id=world["strategies"][world["orgs"][org].slug]["backtest"].pk,
        sweep_id=world["strategies"][world["orgs"][org].slug]["sweep"].pk,
        token=world["strategies"][world["orgs"][org].slug]["deployment"].webhook_token,
        job_id=world["export_jobs"][world["orgs"][org].slug].pk,
    )
    if route.name.startswith(tuple(f"{m} " for m in ("GET", "POST", "PUT", "PATCH", "DELETE"))):
        return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), route.path_template)
    params = re.findall(r"<(?:\w+:)?(\w+)>", route.path_template)
    missing = [p for p in params if p not in values]
    assert not missing, f"give a value for {missing} of {route.name} in FIXED_KWARGS"
    return reverse(route.name, kwargs={p: values[p] for p in params})


def _body(route: Route) -> dict:
    if route.key not in JSON_BODIES:
        return {}
    return {"data": JSON_BODIES[route.key], "content_type": "application/json"}


def test_each_route_admits_exactly_the_callers_its_rule_allows(world):
    routes, _ = collect_routes()
    clients = {actor: _client(world, actor) for actor in ACTORS}
    mismatches, checked = [], 0
    for route in routes:
        if not route.reversible:
            continue  # unnamed patterns (the admin's catch-all) are classified but cannot be built
        rule = ROUTES[route.key].split()[-1]
        for org, granted in _targets(route):
            url = _url(world, route, org, granted)
            for actor in ACTORS:
                # A fresh client for sign-out routes, so the shared one stays signed in.
                client = _client(world, actor) if "logout" in route.name else clients[actor]
                with transaction.atomic():
                    response = client.generic(route.method, url, secure=False, **_body(route))
                    transaction.set_rollback(True)  # every request leaves the world as it was
                checked += 1
                allowed, expected = _allowed(response, rule), _expected(rule, actor, org, granted)
                if allowed != expected:
                    where = f"{org} org, {'granted' if granted else 'not granted'}"
                    mismatches.append(
                        f"{route.name} [{rule}] {route.method} {url} as {actor} ({where}): "
                        f"expected {'allowed' if expected else 'denied'}, got {response.status_code} "
                        f"{response.get('Location', '')}"
                    )
    assert checked > 300
    assert not mismatches, f"{len(mismatches)} of {checked} checks failed:\n" + "\n".join(mismatches)


# Where a Compliance member is refused a mutating route of its own organisation: the organisation's
# routes, and those of its accounts and their orders (which its reports name), answer 403: it is a
# member, the act is not its role's. Another user's own API key, watchlist or alert answers 404, as for
# every caller but its owner; the platform's routes are not found outside the platform staff.
_COMPLIANCE_REFUSAL = {"org_manager": 403, "org_writer": 403, "staff": 404}
_NOT_VISIBLE = ("key_owner", "watchlist_owner", "alert_owner")


def test_a_compliance_member_is_refused_every_mutating_route_of_its_organisation_with_its_status(world):
    routes, _ = collect_routes()
    client = _client(world, "compliance")
    wrong, refused = [], 0
    for route in routes:
        if not route.reversible or route.method == "GET" or "logout" in route.name:
            continue
        rule = ROUTES[route.key].split()[-1]
        for org, granted in _targets(route):
            if org != "own" or _expected(rule, "compliance", org, granted):
                continue
            url = _url(world, route, org, granted)
            with transaction.atomic():
                response = client.generic(route.method, url, secure=False, **_body(route))
                transaction.set_rollback(True)
            refused += 1
            if rule.startswith("account:"):
                expected = 403
            else:
                expected = 404 if rule in _NOT_VISIBLE else _COMPLIANCE_REFUSAL[rule]
            if response.status_code != expected:
                wrong.append(f"{route.method} {url} [{rule}]: expected {expected}, got {response.status_code}")
    assert refused > 60
    assert not wrong, "\n".join(wrong)
