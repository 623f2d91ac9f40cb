from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.request_id import new_request_id, reset_request_id, set_request_id


class RequestIdMiddleware:
    """Take X-Request-ID from the proxy (or make one), expose it as ``request.id`` and echo it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.id = new_request_id(request.headers.get("X-Request-ID"))  # type: ignore[attr-defined]
        token = set_request_id(request.id)  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request.id  # type: ignore[attr-defined]
        return response


class NoStoreMiddleware:
    """Mark every dynamic response ``Cache-Control: no-store`` unless it says otherwise (static files
    do): pages and API answers carry orders, positions and balances, which no browser cache, shared
    proxy or back button may keep after the trader signs out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response
