"""The REST API (django-ninja): one NinjaAPI, each domain adds its router here."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from accounts.auth import api_auth
from core.api_errors import document_errors
from core.database_unavailable import database_unavailable
from core.errors import ApplicationError
from core.request_guard import error_response
from infra import health


def _docs_for_signed_in_users_in_production(view):
    """The API's documentation and schema are public while developing; in production they answer 404
    to anyone but a user signed in with both factors (they map every route an attacker could try)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        user = request.user
        if settings.PRODUCTION and not (user.is_authenticated and user.is_verified()):
            raise Http404("not found")
        return view(request, *args, **kwargs)

    return guarded


def _methods_refused_in_house_shape(view):
    """ninja answers a method its path does not serve with a bare 405; say it in the house shape."""

    @wraps(view)
    def refusing(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code != 405:
            return response
        refused = error_response(request, 405, "method_not_allowed", f"{request.method} is not allowed here.")
        refused["Allow"] = response.headers.get("Allow", "")
        return refused

    return refusing


class TerminalAPI(NinjaAPI):
    """The NinjaAPI whose schema documents every operation's errors (core.api_errors) and whose
    refused methods answer in the ``{"code", "message", "extra"}`` shape (an unknown path under /api/
    and an oversized body do through the project's error handlers, core.request_guard).

    The error statuses that follow from an operation's shape (credentials, body, parameters) are added
    to the generated schema here, once, rather than to every decorator: they are answered by the
    exception handlers below, not by the routes. Statuses a route's own logic answers are declared in
    its ``response`` mapping with ``errors(...)``.
    """

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None):
        return document_errors(super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))

    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        routes = [
            URLPattern(p.pattern, _methods_refused_in_house_shape(p.callback), p.default_args, p.name)
            if isinstance(p, URLPattern)
            else p
            for p in patterns
        ]
        return routes, app_name, namespace


api = TerminalAPI(
    title="Next-Gen Algo Terminal API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
    docs_decorator=_docs_for_signed_in_users_in_production,
    # Every route needs an authenticated caller unless it opts out with auth=None (health does):
    # a JWT bearer token, an API key, or a browser session that passed the second factor.
    auth=api_auth,
)


@api.get("/health", auth=None, response={200: dict, 503: dict}, tags=["operations"])
def get_health(request: HttpRequest) -> JsonResponse:
    """Overall status and one entry per dependency; 200 when healthy, 503 naming what failed."""
    healthy, report = health.run_checks()
    return JsonResponse(report, status=200 if healthy else 503)


@api.get("/health/ready", auth=None, response={200: dict, 503: dict}, tags=["operations"])
def get_readiness(request: HttpRequest) -> JsonResponse:
    """Whether this process can serve requests: the database and Redis only (the probe that takes a web
    process in or out of the load balancer); 200 when ready, 503 naming what failed. Beat, the feed
    and the queues are in ``/api/health``, for alerts: none of them stops a page from being served."""
    ready, report = health.run_checks(readiness=True)
    return JsonResponse(report, status=200 if ready else 503)


@api.get("/v1/whoami", tags=["operations"])
def whoami(request: HttpRequest) -> dict:
    """The authenticated caller (also the baseline endpoint of bench/orders.py)."""
    return {"id": request.user.pk, "username": request.user.get_username()}


api.add_router("/v1/", "orders.api.router")
api.add_router("/v1/", "orders.reports.api.router")
api.add_router("/v1/", "rms.api.router")
api.add_router("/v1/", "strategies.api.router")
api.add_router("/v1/", "alerts.api.router")


@api.exception_handler(ApplicationError)
def on_application_error(request: HttpRequest, exc: ApplicationError) -> JsonResponse:
    return JsonResponse(exc.as_dict(), status=exc.status, headers=getattr(exc, "headers", None))


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> JsonResponse:
    return JsonResponse(
        {
            "code": "not_authenticated",
            "message": "Send a bearer access token, an X-API-Key, or sign in (with your one-time code).",
            "extra": {},
        },
        status=401,
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    """ninja's own refusals (a body that is not JSON) in the same shape as domain errors."""
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        code, message = "body_not_json", "The request body is not valid JSON."
    else:
        code, message = "bad_request" if exc.status_code == 400 else f"http_{exc.status_code}", str(exc)
    return JsonResponse({"code": code, "message": message, "extra": {}}, status=exc.status_code)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The database lost the connection, refused it, or did not give one in time: 503
    ``database_unavailable`` with Retry-After (core.database_unavailable), not a 500."""
    return database_unavailable(request, exc)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """A route's own 404 (ninja's default says {"detail": ...}) as the project's handler says it."""
    return error_response(request, 404, "not_found", "No such route or object.")


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> JsonResponse:
    """Schema errors in the same shape as domain errors, with ninja's per-field detail in ``extra``."""
    return JsonResponse(
        {"code": "validation_error", "message": "The request is not valid.", "extra": {"errors": exc.errors}},
        status=422,
    )


from accounts.api import router as accounts_router  # noqa: E402
from marketdata.api import router as marketdata_router  # noqa: E402

api.add_router("/accounts", accounts_router)
api.add_router("/marketdata", marketdata_router)
