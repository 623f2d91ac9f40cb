"""The REST API (django-ninja): one NinjaAPI, each domain adds its router here."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI

from terminal import health

api = NinjaAPI(
    title="Next-Gen Algo Terminal API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
)


@api.get("/health", auth=None, include_in_schema=True, tags=["operations"])
def get_health(request: HttpRequest) -> JsonResponse:
    """Overall status and one entry per dependency; 200 when healthy, 503 naming what failed."""
    healthy, report = health.run_checks()
    return JsonResponse(report, status=200 if healthy else 503)
